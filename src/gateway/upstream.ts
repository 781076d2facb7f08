/**
 * The HTTP client for upstream AI providers: an undici `Agent` (keep-alive pooling, connect
 * timeout) whose connector refuses what an SSRF would need.
 *
 * Two checks, both inside the connector so that no code path can skip them (src/net/egress.ts):
 * 1. before any DNS: the URL's scheme (`https:` unless plain http is allowed), host and port (an
 *    operator allowlist of exact names or `*.suffix` patterns, each with its ports: 443 by default);
 * 2. after DNS, in the socket's `lookup`: every address the name resolved to must be public unless
 *    it falls in an operator-allowed CIDR, so DNS rebinding to a private address fails too.
 *
 * This file maps the egress refusals to the gateway's error codes. Redirects are not followed
 * (undici's default), so a 30x cannot lead elsewhere either.
 */
import { Agent } from 'undici';
import {
  compileEgressPolicy,
  createGuardedConnector,
  refuseEgressTarget,
  type EgressPolicy,
  type EgressRefusalReason,
  type EgressRefusedError,
  type EgressResolver,
} from '../net/egress.ts';
import type { GatewayErrorCode } from './error-codes.ts';
import { GatewayError } from './errors.ts';

// The pure checks live with the config schema and in net/egress; re-exported for the gateway's callers.
export { checkCidr, checkHostPattern, parseHostEntry } from '../config/gateway.ts';
export { createAddressCheck, effectivePort, isHostAllowed, isHostPortAllowed } from '../net/egress.ts';

/** Which upstreams may be reached. */
export type UpstreamPolicy = EgressPolicy;

/** Resolves a hostname to all its addresses (injectable for tests; `dns.lookup` by default). */
export type UpstreamResolver = EgressResolver;

export interface UpstreamAgentOptions extends UpstreamPolicy {
  /** TCP (and TLS) connect timeout. Default 5000 ms. */
  connectTimeoutMs?: number;
  /** How long an idle pooled connection is kept. Default 10 000 ms. */
  keepAliveTimeoutMs?: number;
  /** Maximum connections per upstream origin (null: unbounded). Default 256. */
  maxConnectionsPerOrigin?: number | null;
  resolve?: UpstreamResolver;
}

// Where the gateway's settings live, named in the TypeError a bad allowlist entry throws at startup.
const CONFIG_PATH = 'gateway.upstream';

const GATEWAY_CODE_OF: Record<EgressRefusalReason, GatewayErrorCode> = {
  SCHEME_NOT_ALLOWED: 'UPSTREAM_SCHEME_NOT_ALLOWED',
  HOST_NOT_ALLOWED: 'UPSTREAM_HOST_NOT_ALLOWED',
  PORT_NOT_ALLOWED: 'UPSTREAM_PORT_NOT_ALLOWED',
  PRIVATE_ADDRESS: 'UPSTREAM_ADDRESS_NOT_ALLOWED',
};

/** The gateway's answer to an egress refusal (502 with the UPSTREAM_*_NOT_ALLOWED code). */
function toGatewayError(refusal: EgressRefusedError): GatewayError {
  return new GatewayError(GATEWAY_CODE_OF[refusal.code]);
}

/**
 * Throws the GatewayError a connection to `url` would fail with, without any network access
 * (scheme, host allowlist, IP literals). Addresses behind names are checked at connect time.
 * @example assertUpstreamUrlAllowed(new URL(provider.baseUrl), policy)
 */
export function assertUpstreamUrlAllowed(url: URL, policy: UpstreamPolicy): void {
  const refusal = refuseEgressTarget(url.protocol, url.hostname, url.port, compileEgressPolicy(policy, CONFIG_PATH));
  if (refusal) throw toGatewayError(refusal);
}

/**
 * An undici Agent for upstream calls that refuses hosts off the allowlist (before DNS) and
 * non-public addresses (after DNS), with a connect timeout and keep-alive pooling.
 * @example const agent = createUpstreamAgent({ allowedHosts: ['api.openai.com', '*.openai.azure.com'] })
 */
export function createUpstreamAgent(options: UpstreamAgentOptions): Agent {
  const compiled = compileEgressPolicy(options, CONFIG_PATH);
  const connect = createGuardedConnector({
    refuseTarget: (protocol, hostname, port) => refuseEgressTarget(protocol, hostname, port, compiled),
    addressAllowed: compiled.addressAllowed,
    refusalError: toGatewayError,
    ...(options.resolve ? { resolve: options.resolve } : {}),
    ...(options.connectTimeoutMs === undefined ? {} : { connectTimeoutMs: options.connectTimeoutMs }),
  });
  return new Agent({
    connect,
    keepAliveTimeout: options.keepAliveTimeoutMs ?? 10_000,
    keepAliveMaxTimeout: Math.max(options.keepAliveTimeoutMs ?? 10_000, 60_000),
    connections: options.maxConnectionsPerOrigin === undefined ? 256 : options.maxConnectionsPerOrigin,
    pipelining: 1,
  });
}
