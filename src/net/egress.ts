/**
 * Outbound-connection checks shared by every feature that connects to an address someone typed in
 * (the gateway's upstream providers, an organisation's identity provider): a host/port allowlist,
 * DNS resolution inside the socket's own `lookup`, and refusal of loopback, private, link-local
 * (cloud metadata), CGNAT and the other non-public ranges.
 *
 * The address check sits where the socket gets its address, so a name that resolves to a public
 * address for a pre-check and to 169.254.169.254 for the connection (DNS rebinding) still fails:
 * there is only one resolution, and it is the checked one. Refusals are `EgressRefusedError`s with
 * a reason; a feature maps them to its own error codes (`refusalError`). Imports no feature.
 */
import { promises as dnsPromises, type LookupAddress, type LookupOptions } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, buildConnector } from 'undici';
import { checkCidr, checkHostPattern, normalizeHost, parseHostEntry, type HostEntry } from '../config/gateway.ts';

/** Why an outbound connection was refused. */
export type EgressRefusalReason = 'SCHEME_NOT_ALLOWED' | 'HOST_NOT_ALLOWED' | 'PORT_NOT_ALLOWED' | 'PRIVATE_ADDRESS';

/** An outbound connection this module refused; `code` says why. Features map it to their own errors. */
export class EgressRefusedError extends Error {
  override readonly name = 'EgressRefusedError';
  readonly code: EgressRefusalReason;
  constructor(code: EgressRefusalReason) {
    super(`outbound connection refused: ${code}`);
    this.code = code;
  }
}

/** Which hosts and addresses may be reached. */
export interface EgressPolicy {
  /**
   * Exact hostnames or IP literals (`api.openai.com`, `127.0.0.1`), or `*.suffix` patterns
   * (`*.openai.azure.com` matches any name below it, not the suffix itself), each with an optional
   * `:port` or `:*`; without one only the scheme's default port (443, or 80 for http) is allowed.
   */
  allowedHosts: readonly string[];
  /** CIDRs (or single addresses) that are allowed even though they are private or reserved, e.g. `10.0.5.0/24` for an in-house model server. */
  allowedCidrs?: readonly string[];
  /** Allow `http:` URLs. Off by default: credentials would cross the network in clear. */
  allowInsecureHttp?: boolean;
}

/** Resolves a hostname to all its addresses (injectable for tests; `dns.lookup` by default). */
export type EgressResolver = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

// Ranges no outbound call needs to reach: loopback, private, link-local (cloud metadata at
// 169.254.169.254), CGNAT, documentation, benchmarking, multicast, reserved.
const DENIED_IPV4: readonly [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];
const DENIED_IPV6: readonly [string, number][] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['100::', 64], // discard
  ['2001::', 32], // Teredo: hides an IPv4 address we cannot check
  ['2001:10::', 28], // ORCHID
  ['2001:db8::', 32], // documentation
  ['64:ff9b:1::', 48], // local-use NAT64
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // site-local (deprecated)
  ['ff00::', 8], // multicast
];

const DENIED = new BlockList();
for (const [net, prefix] of DENIED_IPV4) DENIED.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of DENIED_IPV6) DENIED.addSubnet(net, prefix, 'ipv6');

/** The port a URL or connection goes to: its explicit port, else the scheme's default. */
export function effectivePort(protocol: string, port: string | number | undefined): number {
  const explicit = typeof port === 'number' ? port : port === undefined || port === '' ? Number.NaN : Number(port);
  if (Number.isInteger(explicit) && explicit > 0) return explicit;
  return protocol === 'http:' ? 80 : 443;
}

function hostMatches(host: string, pattern: string): boolean {
  if (pattern.startsWith('*.')) {
    const suffix = pattern.slice(1); // '.example.com'
    return host.length > suffix.length && host.endsWith(suffix);
  }
  return pattern === host || (isIP(pattern) === 6 && isIP(host) === 6 && sameIpv6(pattern, host));
}

function portMatches(port: number, rule: HostEntry['port'], defaultPort: number): boolean {
  return rule === '*' || port === (rule ?? defaultPort);
}

function entriesOf(allowedHosts: readonly string[]): HostEntry[] {
  return allowedHosts.map((e) => parseHostEntry(e)).filter((e): e is HostEntry => e !== null);
}

/**
 * True when `hostname` matches an allowlist entry (the port aside).
 * @example isHostAllowed('myres.openai.azure.com', ['*.openai.azure.com']) // true
 */
export function isHostAllowed(hostname: string, allowedHosts: readonly string[]): boolean {
  const host = normalizeHost(hostname);
  return host !== '' && entriesOf(allowedHosts).some((e) => hostMatches(host, e.host));
}

/**
 * True when one allowlist entry matches both `hostname` and `port`. An entry without a port
 * allows only `defaultPort` (443 for https, 80 for http).
 * @example isHostPortAllowed('api.openai.com', 8443, ['api.openai.com'], 443) // false
 */
export function isHostPortAllowed(hostname: string, port: number, allowedHosts: readonly string[], defaultPort = 443): boolean {
  const host = normalizeHost(hostname);
  return host !== '' && entriesOf(allowedHosts).some((e) => hostMatches(host, e.host) && portMatches(port, e.port, defaultPort));
}

/** The eight 16-bit groups of an IPv6 address (zone id removed), or null. */
function parseIpv6(text: string): number[] | null {
  const address = text.split('%')[0] ?? '';
  if (isIP(address) !== 6) return null;
  const toGroups = (part: string): number[] => {
    if (part === '') return [];
    const groups: number[] = [];
    for (const piece of part.split(':')) {
      if (piece.includes('.')) {
        const octets = piece.split('.').map(Number);
        groups.push((((octets[0] ?? 0) << 8) | (octets[1] ?? 0)) >>> 0, (((octets[2] ?? 0) << 8) | (octets[3] ?? 0)) >>> 0);
      } else {
        groups.push(Number.parseInt(piece, 16));
      }
    }
    return groups;
  };
  const halves = address.split('::');
  const head = toGroups(halves[0] ?? '');
  if (halves.length === 1) return head.length === 8 ? head : null;
  const tail = toGroups(halves[1] ?? '');
  const zeros = 8 - head.length - tail.length;
  if (zeros < 0) return null;
  return [...head, ...new Array<number>(zeros).fill(0), ...tail];
}

function sameIpv6(a: string, b: string): boolean {
  const ga = parseIpv6(a);
  const gb = parseIpv6(b);
  return ga !== null && gb !== null && ga.every((g, i) => g === gb[i]);
}

function ipv4FromGroups(high: number, low: number): string {
  return `${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

/**
 * The IPv4 address an IPv6 address carries, for the forms that route to it: IPv4-mapped
 * (::ffff:a.b.c.d), IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::a.b.c.d) and 6to4 (2002:AABB:CCDD::).
 */
function embeddedIpv4(groups: readonly number[]): string | null {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  if (g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0 && (g5 === 0xffff || (g5 === 0 && (g6 !== 0 || g7 > 1)))) {
    return ipv4FromGroups(g6, g7);
  }
  if (g0 === 0x64 && g1 === 0xff9b && g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0) return ipv4FromGroups(g6, g7);
  if (g0 === 0x2002) return ipv4FromGroups(g1, g2);
  return null;
}

function buildAllowList(cidrs: readonly string[], configPath: string): BlockList {
  const list = new BlockList();
  for (const cidr of cidrs) {
    const problem = checkCidr(cidr);
    if (problem) throw new TypeError(`${configPath}.allowedCidrs: "${cidr}": ${problem}`);
    const [address = '', prefixText] = cidr.trim().split('/');
    const type = isIP(address) === 4 ? 'ipv4' : 'ipv6';
    if (prefixText === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(prefixText), type);
  }
  return list;
}

/**
 * A compiled address check: true when a connection to `address` is allowed. An IPv6 address that
 * carries an IPv4 address is judged on both, so ::ffff:127.0.0.1 is loopback. `configPath` names
 * the setting in the TypeError a bad CIDR throws (a configuration error, at startup).
 */
export function createAddressCheck(allowedCidrs: readonly string[] = [], configPath = 'egress'): (address: string) => boolean {
  const allowed = buildAllowList(allowedCidrs, configPath);
  const passes = (address: string, type: 'ipv4' | 'ipv6'): boolean => allowed.check(address, type) || !DENIED.check(address, type);
  return (raw: string) => {
    const address = raw.split('%')[0] ?? '';
    const family = isIP(address);
    if (family === 4) return passes(address, 'ipv4');
    if (family !== 6) return false;
    if (!passes(address, 'ipv6')) return false;
    const groups = parseIpv6(address);
    if (groups === null) return false;
    const v4 = embeddedIpv4(groups);
    return v4 === null || passes(v4, 'ipv4');
  };
}

/** A policy validated once, at startup. */
export interface CompiledEgressPolicy {
  hosts: readonly string[];
  addressAllowed: (address: string) => boolean;
  allowHttp: boolean;
}

/**
 * Validates a policy once, at startup: bad entries are configuration errors (TypeError naming
 * `configPath`), not request errors.
 */
export function compileEgressPolicy(policy: EgressPolicy, configPath = 'egress'): CompiledEgressPolicy {
  for (const host of policy.allowedHosts) {
    const problem = checkHostPattern(host);
    if (problem) throw new TypeError(`${configPath}.allowedHosts: "${host}": ${problem}`);
  }
  return {
    hosts: [...policy.allowedHosts],
    addressAllowed: createAddressCheck(policy.allowedCidrs ?? [], configPath),
    allowHttp: policy.allowInsecureHttp === true,
  };
}

/**
 * The refusal a connection to this target would meet before any DNS (scheme, host and port
 * allowlist, IP literals), or null. Addresses behind names are checked at connect time.
 */
export function refuseEgressTarget(protocol: string, hostname: string, port: string | number | undefined, compiled: CompiledEgressPolicy): EgressRefusedError | null {
  if (protocol !== 'https:' && !(protocol === 'http:' && compiled.allowHttp)) return new EgressRefusedError('SCHEME_NOT_ALLOWED');
  if (!isHostAllowed(hostname, compiled.hosts)) return new EgressRefusedError('HOST_NOT_ALLOWED');
  // A caller may not reach another service on an allowed host by naming another port.
  if (!isHostPortAllowed(hostname, effectivePort(protocol, port), compiled.hosts, effectivePort(protocol, undefined))) return new EgressRefusedError('PORT_NOT_ALLOWED');
  const host = normalizeHost(hostname);
  // An IP literal never reaches `lookup`, so its address is checked here.
  if (isIP(host) !== 0 && !compiled.addressAllowed(host)) return new EgressRefusedError('PRIVATE_ADDRESS');
  return null;
}

type NetLookup = (
  hostname: string,
  options: LookupOptions,
  callback: (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void,
) => void;

const defaultResolver: EgressResolver = (hostname) => dnsPromises.lookup(hostname, { all: true, order: 'verbatim' });

/** A `lookup` for net.connect that resolves once and refuses when any address is not allowed. */
function createGuardedLookup(resolve: EgressResolver, addressAllowed: (address: string) => boolean, refusalError: RefusalMapper): NetLookup {
  return (hostname, options, callback) => {
    resolve(hostname).then(
      (found) => {
        const wanted = options.family === 4 || options.family === 6 ? found.filter((a) => a.family === options.family) : [...found];
        if (wanted.length === 0) {
          const err: NodeJS.ErrnoException = new Error(`no address for ${hostname}`);
          err.code = 'ENOTFOUND';
          callback(err, '');
          return;
        }
        // Refuse if any address is refused rather than filtering: a name that mixes public and
        // private answers is either misconfigured or hostile.
        if (!wanted.every((a) => addressAllowed(a.address))) {
          callback(refusalError(new EgressRefusedError('PRIVATE_ADDRESS')), '');
          return;
        }
        const addresses: LookupAddress[] = wanted.map((a) => ({ address: a.address, family: a.family }));
        const first = addresses[0] as LookupAddress;
        if (options.all === true) callback(null, addresses);
        else callback(null, first.address, first.family);
      },
      (err: unknown) => callback(err instanceof Error ? (err as NodeJS.ErrnoException) : new Error('DNS lookup failed'), ''),
    );
  };
}

/** Turns a refusal into the error a feature wants its callers to see (the refusal itself by default). */
export type RefusalMapper = (refusal: EgressRefusedError) => Error;

export interface GuardedConnectorOptions {
  /** Refusal before any DNS for this target, or null (e.g. `refuseEgressTarget` with a compiled policy). */
  refuseTarget: (protocol: string, hostname: string, port: string | number | undefined) => EgressRefusedError | null;
  /** The address check every resolved address must pass. */
  addressAllowed: (address: string) => boolean;
  resolve?: EgressResolver;
  /** TCP (and TLS) connect timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  refusalError?: RefusalMapper;
}

/**
 * An undici connector that refuses a target before DNS and every non-allowed address after it,
 * inside the connection's own lookup, so no code path can skip either check.
 */
export function createGuardedConnector(options: GuardedConnectorOptions): buildConnector.connector {
  const refusalError = options.refusalError ?? ((refusal: EgressRefusedError): Error => refusal);
  const lookup = createGuardedLookup(options.resolve ?? defaultResolver, options.addressAllowed, refusalError);
  const connect = buildConnector({ timeout: options.connectTimeoutMs ?? 5_000, lookup });
  return (connectOptions, callback) => {
    const refusal = options.refuseTarget(connectOptions.protocol, connectOptions.hostname, connectOptions.port);
    if (refusal) {
      // Asynchronously, as a socket error would be: undici expects the callback after return.
      const error = refusalError(refusal);
      process.nextTick(() => callback(error, null));
      return;
    }
    connect(connectOptions, callback);
  };
}

/**
 * An undici Agent for calls to a host an org or operator typed in (an identity provider's issuer):
 * any host name, but every address it resolves to, and any IP literal, must be public: loopback,
 * private, link-local (cloud metadata), CGNAT and the other non-public ranges are refused at
 * connect time, after DNS, so a name that points inside cannot reach in. Refusals are
 * `EgressRefusedError('PRIVATE_ADDRESS')` unless `refusalError` maps them.
 * @example const agent = createPublicAddressAgent(); await fetch(url, { dispatcher: agent })
 */
export function createPublicAddressAgent(options: { resolve?: EgressResolver; connectTimeoutMs?: number; refusalError?: RefusalMapper } = {}): Agent {
  const addressAllowed = createAddressCheck([]);
  const connect = createGuardedConnector({
    ...options,
    addressAllowed,
    refuseTarget: (_protocol, hostname) => {
      const host = normalizeHost(hostname);
      return isIP(host) !== 0 && !addressAllowed(host) ? new EgressRefusedError('PRIVATE_ADDRESS') : null;
    },
  });
  return new Agent({ connect, keepAliveTimeout: 10_000, connections: 16, pipelining: 1 });
}
