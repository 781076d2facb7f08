/**
 * Structured JSON logging (pino) with log hygiene (DATA-4): every log line is scrubbed of
 * credentials and personal data before it is written, whatever the caller passed.
 *
 * Where scrubbing happens:
 * - `hooks.logMethod`: the message string. printf-style arguments are formatted here (the same
 *   placeholders pino knows: %s %d %i %f %j %o %O %%) so the *finished* message is scrubbed and
 *   `'Bearer %s', token` cannot slip through. When pino would take the message from an Error
 *   (`log.error(err)`, `log.error({ err })`), the scrubbed message is passed explicitly.
 * - `formatters.log`: the merged object, deep-copied by `sanitizeForLog`.
 * - `formatters.bindings` and a wrapper around `child`/`setBindings`: bindings (pino does not run
 *   child bindings through `formatters.bindings`, hence the wrapper).
 * - `serializers` err/req/res: sanitise on their own (pino applies serializers after
 *   `formatters.log`), so they are safe when Fastify hands them raw requests and replies.
 *
 * Sensitive key names (see `keySensitivity`). A key is split into word parts (camelCase, snake_case,
 * kebab-case, dots) and also compacted (lower case, separators removed). Its value becomes
 * "[REDACTED]" when:
 * - the compact key is `authorization`, `proxyauthorization`, `cookie`, `setcookie`, `xapikey`,
 *   `auth`, `dsn`, `connectionstring`/`connstring`/`connstr`; or
 * - it contains `password`, `passwd`, `passphrase`, `secret`, `credential`, `apikey`,
 *   `privatekey`, `cookie`, `authorization`, `session`, `csrf`, `xsrf`; or
 * - a word part is `pwd`, `pin`, `otp`, `totp`, `hotp`, `jwt`, `dsn`; or
 * - (token/key family) it contains `token`, a word part is `key`/`keys`, or it ends in `key`/`keys`
 *   (`privateKey`, `signingKey`, `idempotencyKey`, `keyCount`, `monkey` …). For this family only,
 *   number and boolean values are kept, since a secret token or key is never a JS number while
 *   `maxTokens: 4096` or `promptTokens` is a usage figure worth keeping.
 * Over-redaction is accepted (`sessionCount`, `publicKey`, `cacheKey`, `keyId`, `apiKeyId` are
 * redacted; log such identifiers under another name). `null` and
 * `undefined` are left as they are (they reveal only absence). `code`, `state`, `status`,
 * `statusCode`, `route`, `url` are NOT sensitive names; URLs are scrubbed as strings instead.
 *
 * In every string (messages, values, keys, URLs, error messages and stacks):
 * - known secrets (from `knownSecrets`, each at least 8 characters; also their URL-encoded form);
 * - URL userinfo: `scheme://user:pass@` -> `scheme://user:[REDACTED]@`, `scheme://tok@` ->
 *   `scheme://[REDACTED]@`;
 * - `Bearer <word>` -> `Bearer [REDACTED]` (any case, so text like "missing bearer token" loses its
 *   last word); `Basic <b64>` only when it decodes to something with a colon (`user:pass`);
 * - JWT/JWS/JWE (`eyJ…` segments joined by dots) and Gatehouse API keys (`gatehouse_` + 54 base62
 *   characters, and the older `gh_` + 20 or more url-safe characters) -> `[REDACTED]`;
 * - query/fragment parameters (after `?`, `&`, `#`, `;`) whose name is sensitive as above, or is
 *   `code`, `state`, `sig`, `ticket`, `SAMLResponse`, `SAMLRequest`, `RelayState`, or contains
 *   `signature`/`assertion` (OAuth codes, presigned URL signatures);
 * - `name=value` / `name: value` / `"name":"value"` in free text when the name is sensitive as
 *   above (for `Authorization`, `Cookie`, `Set-Cookie`, `X-Api-Key`, `Proxy-Authorization` the
 *   rest of the line);
 * - emails: `alice@example.com` -> `a***@example.com` (domain kept; needs a dotted domain with an
 *   alphabetic TLD, so `root@localhost` is not masked);
 * - phone numbers in international format (`+` then 8–15 digits, separated by at most two of
 *   space . - ( ) between digits): `+` and the first digit are kept, then stars, then the last 4
 *   digits (10 or more digits) or the last 2 (8–9 digits): `+1 415 555 0100` -> `+1******0100`.
 *
 * Bounds: depth 8, 100 array items, 200 keys per object, 5000 values per log call; beyond them
 * "[Truncated]" / "[N more items]"; cycles become "[Circular]". Strings are not truncated.
 *
 * Not covered: secrets that match no pattern and were not registered (a bare password in free
 * text), national-format or URL-encoded (`%2B…`) phone numbers, names, addresses and other PII,
 * secrets inside Buffers (rendered as `[Binary n bytes]`), and serializers a caller adds to a child
 * logger (their output skips `formatters.log`). The free-text and URL rules are heuristics.
 *
 * size-exception: the scrubbing rules of log hygiene (DATA-4) and the hooks that apply them; split
 * by concern is pending (issue 17); no measured reason to keep it whole.
 */
import pino from 'pino';

export const REDACTED = '[REDACTED]';

const MAX_DEPTH = 8;
const MAX_ARRAY_ITEMS = 100;
const MAX_OBJECT_KEYS = 200;
/** Values visited per sanitised object; past it everything is "[Truncated]". */
const MAX_NODES = 5000;
const MAX_USER_AGENT = 512;
/** Known secrets shorter than this are ignored: they would scrub common words. */
const MIN_SECRET_LENGTH = 8;

export interface LoggerOptions {
  level: string;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  destination?: pino.DestinationStream;
  /** Values to scrub anywhere (configured tokens…). A function so config reloads are seen. */
  knownSecrets?: () => readonly string[];
}

export interface SanitizeOptions {
  /** Include (scrubbed) `stack` in serialised errors. The logger sets it at debug/trace. */
  includeStack?: boolean;
}

/** Minimal shape of what the request serializer reads (a Fastify request fits). */
export interface LoggableRequest {
  method: string;
  url: string;
  id: string;
  ip?: string;
  headers: Record<string, unknown>;
}

// ---------------------------------------------------------------------------------------------
// Sensitive names

const NOT_SENSITIVE = 0;
/** Token/key family: numbers and booleans are kept, anything else redacted. */
const WEAK = 1;
const STRONG = 2;
type Sensitivity = typeof NOT_SENSITIVE | typeof WEAK | typeof STRONG;

const STRONG_EXACT = new Set([
  'authorization',
  'proxyauthorization',
  'cookie',
  'setcookie',
  'xapikey',
  'auth',
  'dsn',
  'connectionstring',
  'connstring',
  'connstr',
]);
const STRONG_SUBSTRINGS = [
  'password',
  'passwd',
  'passphrase',
  'secret',
  'credential',
  'apikey',
  'privatekey',
  'cookie',
  'authorization',
  'session',
  'csrf',
  'xsrf',
];
const STRONG_PARTS = new Set(['pwd', 'pin', 'otp', 'totp', 'hotp', 'jwt', 'dsn']);
/** Header-like names whose free-text value runs to the end of the line. */
const LINE_VALUE_NAMES = new Set(['authorization', 'proxyauthorization', 'cookie', 'setcookie', 'xapikey']);
/** Extra names redacted only as URL query/fragment parameters. */
const QUERY_EXACT = new Set(['code', 'state', 'sig', 'ticket', 'samlresponse', 'samlrequest', 'relaystate']);
const QUERY_SUBSTRINGS = ['signature', 'assertion'];

function keyParts(key: string): string[] {
  return key
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .replace(/([A-Z]+)([A-Z][a-z])/g, '$1 $2')
    .toLowerCase()
    .split(/[^a-z0-9]+/)
    .filter((p) => p.length > 0);
}

function computeSensitivity(key: string): Sensitivity {
  const parts = keyParts(key);
  const compact = parts.join('');
  if (compact.length === 0) return NOT_SENSITIVE;
  if (STRONG_EXACT.has(compact)) return STRONG;
  for (const s of STRONG_SUBSTRINGS) if (compact.includes(s)) return STRONG;
  for (const p of parts) if (STRONG_PARTS.has(p)) return STRONG;
  if (compact.includes('token')) return WEAK;
  if (compact.endsWith('key') || compact.endsWith('keys')) return WEAK;
  for (const p of parts) if (p === 'key' || p === 'keys') return WEAK;
  return NOT_SENSITIVE;
}

const sensitivityCache = new Map<string, Sensitivity>();

/** How sensitive a property name is; cached (keys repeat on the hot path). */
function keySensitivity(key: string): Sensitivity {
  const hit = sensitivityCache.get(key);
  if (hit !== undefined) return hit;
  const s = computeSensitivity(key);
  if (key.length <= 100) {
    if (sensitivityCache.size >= 2000) sensitivityCache.clear();
    sensitivityCache.set(key, s);
  }
  return s;
}

function compactName(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

function isSensitiveQueryName(rawName: string, value: string): boolean {
  let name = rawName;
  if (name.includes('%')) {
    try {
      name = decodeURIComponent(name);
    } catch {
      // keep the raw name
    }
  }
  const s = keySensitivity(name);
  if (s === STRONG) return true;
  if (s === WEAK) return !/^\d+$/.test(value);
  const compact = compactName(name);
  if (QUERY_EXACT.has(compact)) return true;
  for (const q of QUERY_SUBSTRINGS) if (compact.includes(q)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// Strings
//
// security/detect-unsafe-regex flags the patterns below for their nested quantifiers. Each
// repeated group is anchored by a mandatory delimiter (a dot, a digit), so backtracking is
// linear per start position, and input is capped at MAX_LOGGED_STRING characters.
/* eslint-disable security/detect-unsafe-regex */

const USERINFO_RE = /\b([a-z][a-z0-9+.-]{0,31}:\/\/)([^\s:/?#@]*)(:[^\s/?#]*)?@/gi;
const BEARER_RE = /\b(bearer)(\s+)[A-Za-z0-9._~+/-]+=*/gi;
const BASIC_RE = /\b(basic)(\s+)([A-Za-z0-9+/]{4,}={0,2})(?![A-Za-z0-9+/=])/gi;
const JWT_RE = /(?<![A-Za-z0-9])eyJ[A-Za-z0-9_-]{2,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*){0,2}/g;
const API_KEY_RE = /(?<![A-Za-z0-9])(?:gh_[A-Za-z0-9_-]{20,}|gatehouse_[0-9A-Za-z]{54})/g;
const QUERY_RE = /([?&#;][ \t]*)([^=&#\s?;"'<>]{1,64})=([^&#\s;"'<>]*)/g;
const KV_RE = /(?<![\w.-])([A-Za-z_][\w.-]{0,63})(["']?[ \t]*[=:][ \t]*)("[^"\r\n]*"|'[^'\r\n]*'|[^\s"'&,;]+)/g;
const ENCODED_EMAIL_RE = /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._+-])[A-Za-z0-9._%+-]*%40((?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*)/g;
const EMAIL_RE = /(?<![A-Za-z0-9._%+-])([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@((?:[A-Za-z0-9-]+\.)+[A-Za-z][A-Za-z0-9-]*)/g;
const PHONE_RE = /(?<![+\d])\+\d(?:[ .()-]{0,2}\d){7,14}(?!\d)/g;
const BEARER_OR_BASIC_RE = /bearer|basic/i;
/** Cheap pre-check: a string with none of these cannot match any rule below. */
const MAYBE_SENSITIVE_RE = /[@+=:]|%40|eyJ|gh_|gatehouse_|bearer|basic/i;
/* eslint-enable security/detect-unsafe-regex */

function maskPhone(match: string): string {
  const digits = match.replace(/\D/g, '');
  const keep = digits.length >= 10 ? 4 : 2;
  return `+${digits.slice(0, 1)}${'*'.repeat(digits.length - 1 - keep)}${digits.slice(-keep)}`;
}

function scrubKeyValues(s: string): string {
  KV_RE.lastIndex = 0;
  let out = '';
  let last = 0;
  let changed = false;
  let m: RegExpExecArray | null;
  while ((m = KV_RE.exec(s)) !== null) {
    const name = m[1] ?? '';
    const sep = m[2] ?? '';
    const value = m[3] ?? '';
    const quote = value.startsWith('"') || value.startsWith("'") ? value.charAt(0) : '';
    const bare = quote ? value.slice(1, -1) : value;
    const sens = keySensitivity(name);
    if (sens === NOT_SENSITIVE || bare === REDACTED || (sens === WEAK && /^\d+$/.test(bare))) {
      KV_RE.lastIndex = m.index + name.length + sep.length;
      continue;
    }
    let end = m.index + m[0].length;
    if (!quote && LINE_VALUE_NAMES.has(compactName(name))) {
      const lf = s.indexOf('\n', end);
      const cr = s.indexOf('\r', end);
      end = lf === -1 ? (cr === -1 ? s.length : cr) : cr === -1 ? lf : Math.min(lf, cr);
    }
    out += s.slice(last, m.index) + name + sep + quote + REDACTED + quote;
    last = end;
    changed = true;
    KV_RE.lastIndex = end;
  }
  return changed ? out + s.slice(last) : s;
}

/**
 * Scrubs one string with the string rules described at the top of this file. `secrets` must come
 * from `prepareSecrets` (filtered, longest first).
 */
/** Longer strings are cut before scrubbing, which bounds the regex work per log call. */
const MAX_LOGGED_STRING = 16_384;
const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function scrubString(input: string, secrets: readonly string[]): string {
  if (input.length < 3) return input;
  let s = input.length > MAX_LOGGED_STRING ? `${input.slice(0, MAX_LOGGED_STRING)}…[${input.length - MAX_LOGGED_STRING} more chars]` : input;
  for (const secret of secrets) {
    if (s.includes(secret)) s = s.replaceAll(secret, REDACTED);
  }
  if (!MAYBE_SENSITIVE_RE.test(s)) return s;
  const hasAt = s.includes('@');
  if (hasAt && s.includes('://')) {
    s = s.replace(USERINFO_RE, (_m, scheme: string, user: string, pass: string | undefined) =>
      pass !== undefined ? `${scheme}${user}:${REDACTED}@` : `${scheme}${REDACTED}@`,
    );
  }
  if (BEARER_OR_BASIC_RE.test(s)) {
    s = s.replace(BEARER_RE, `$1$2${REDACTED}`);
    s = s.replace(BASIC_RE, (m, word: string, space: string, b64: string) =>
      Buffer.from(b64, 'base64').toString('latin1').includes(':') ? `${word}${space}${REDACTED}` : m,
    );
  }
  if (s.includes('eyJ')) s = s.replace(JWT_RE, REDACTED);
  if (s.includes('gh_') || s.includes('gatehouse_')) s = s.replace(API_KEY_RE, REDACTED);
  const hasEq = s.includes('=');
  if (hasEq) {
    s = s.replace(QUERY_RE, (m, lead: string, name: string, value: string) =>
      value.length > 0 && value !== REDACTED && isSensitiveQueryName(name, value) ? `${lead}${name}=${REDACTED}` : m,
    );
  }
  if (hasEq || s.includes(':')) s = scrubKeyValues(s);
  if (hasAt) s = s.replace(EMAIL_RE, '$1***@$2');
  // Emails arrive URL-encoded in query strings (alice%40example.com).
  if (s.includes('%40')) s = s.replace(ENCODED_EMAIL_RE, '$1***%40$2');
  if (s.includes('+')) s = s.replace(PHONE_RE, maskPhone);
  return s;
}

let lastSecretsInput: readonly string[] | undefined;
let lastSecretsOutput: readonly string[] = [];

function sameList(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (a === b) return true;
  if (a === undefined || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Keeps strings of 8+ chars, adds URL-encoded forms, longest first. Cached while the list is unchanged. */
function prepareSecrets(list: readonly string[]): readonly string[] {
  if (sameList(lastSecretsInput, list)) return lastSecretsOutput;
  const set = new Set<string>();
  for (const v of list) {
    if (typeof v !== 'string' || v.length < MIN_SECRET_LENGTH) continue;
    set.add(v);
    const encoded = encodeURIComponent(v);
    if (encoded !== v) set.add(encoded);
  }
  const out = [...set].sort((a, b) => b.length - a.length);
  lastSecretsInput = [...list];
  lastSecretsOutput = out;
  return out;
}

// ---------------------------------------------------------------------------------------------
// Deep copy-and-scrub

interface Walk {
  secrets: readonly string[];
  includeStack: boolean;
  nodes: number;
  ancestors: Set<object>;
}

/** Objects produced by the error/request/response serialisation: serializers pass them through. */
const alreadySanitized = new WeakSet<object>();

function mark<T extends object>(o: T): T {
  alreadySanitized.add(o);
  return o;
}

function newWalk(secrets: readonly string[], includeStack: boolean): Walk {
  return { secrets, includeStack, nodes: 0, ancestors: new Set() };
}

function isErrorValue(v: object): v is Error {
  return v instanceof Error || Object.prototype.toString.call(v) === '[object Error]';
}

function isRequestLike(v: object): v is LoggableRequest {
  const r = v as Record<string, unknown>;
  return typeof r.method === 'string' && typeof r.headers === 'object' && r.headers !== null && ('socket' in r || 'raw' in r);
}

function isResponseLike(v: object): v is { statusCode: number } {
  const r = v as Record<string, unknown>;
  return (
    (typeof r.setHeader === 'function' && 'statusCode' in r) ||
    (typeof r.code === 'function' && typeof r.header === 'function' && 'statusCode' in r)
  );
}

function setProp(out: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  else out[key] = value;
}

function redactedOrWalk(key: string, value: unknown, depth: number, w: Walk): unknown {
  if (value === null || value === undefined) return value;
  const sens = keySensitivity(key);
  if (sens === STRONG) return REDACTED;
  if (sens === WEAK && typeof value !== 'number' && typeof value !== 'boolean') return REDACTED;
  return walk(value, depth + 1, w);
}

function errorType(e: Error): string {
  let name: unknown;
  try {
    name = e.name;
  } catch {
    name = undefined;
  }
  const ctor = (e as { constructor?: { name?: unknown } }).constructor?.name;
  if ((typeof name !== 'string' || name === '' || name === 'Error') && typeof ctor === 'string' && ctor !== '' && ctor !== 'Object') return ctor;
  return typeof name === 'string' && name !== '' ? name : 'Error';
}

function serializeError(e: Error, depth: number, w: Walk): Record<string, unknown> {
  const out: Record<string, unknown> = {
    type: scrubString(errorType(e), w.secrets),
    message: scrubString(String(e.message ?? ''), w.secrets),
  };
  const extra = e as { code?: unknown; statusCode?: unknown; status?: unknown; cause?: unknown; errors?: unknown };
  if (typeof extra.code === 'string') out.code = scrubString(extra.code, w.secrets);
  else if (typeof extra.code === 'number') out.code = extra.code;
  if (typeof extra.statusCode === 'number') out.statusCode = extra.statusCode;
  if (typeof extra.status === 'number') out.status = extra.status;
  if (w.includeStack && typeof e.stack === 'string') out.stack = scrubString(e.stack, w.secrets);
  if (extra.cause !== undefined) out.cause = walk(extra.cause, depth + 1, w);
  if (Array.isArray(extra.errors)) out.errors = walk(extra.errors, depth + 1, w);
  return mark(out);
}

function serializeRequest(req: LoggableRequest, secrets: readonly string[]): Record<string, unknown> {
  const headers = (typeof req.headers === 'object' && req.headers !== null ? req.headers : {}) as Record<string, unknown>;
  const ua = headers['user-agent'];
  const id: unknown = req.id;
  const ip: unknown = req.ip;
  return mark({
    method: typeof req.method === 'string' ? req.method : undefined,
    url: typeof req.url === 'string' ? scrubString(req.url, secrets) : undefined,
    requestId: typeof id === 'string' || typeof id === 'number' ? id : undefined,
    ip: typeof ip === 'string' ? ip : undefined,
    userAgent: typeof ua === 'string' ? scrubString(ua, secrets).slice(0, MAX_USER_AGENT) : undefined,
  });
}

function serializeResponse(res: { statusCode?: unknown }): Record<string, unknown> {
  return mark({ statusCode: typeof res.statusCode === 'number' ? res.statusCode : undefined });
}

function walk(value: unknown, depth: number, w: Walk): unknown {
  if (++w.nodes > MAX_NODES) return '[Truncated]';
  switch (typeof value) {
    case 'string':
      return scrubString(value, w.secrets);
    case 'number':
    case 'boolean':
    case 'undefined':
      return value;
    case 'bigint':
      return value.toString();
    case 'symbol':
      return scrubString(value.toString(), w.secrets);
    case 'function':
      return undefined;
  }
  if (value === null) return null;
  const o = value as object;
  if (alreadySanitized.has(o)) return o;
  if (w.ancestors.has(o)) return '[Circular]';
  if (depth >= MAX_DEPTH) return '[Truncated]';
  w.ancestors.add(o);
  try {
    return walkObject(o, depth, w);
  } catch {
    return '[Unserializable]';
  } finally {
    w.ancestors.delete(o);
  }
}

function walkObject(o: object, depth: number, w: Walk): unknown {
  if (Array.isArray(o)) {
    const n = Math.min(o.length, MAX_ARRAY_ITEMS);
    const out: unknown[] = new Array<unknown>(n);
    for (let i = 0; i < n; i++) out[i] = walk(o[i], depth + 1, w);
    if (o.length > n) out.push(`[${o.length - n} more items]`);
    return out;
  }
  if (isErrorValue(o)) return serializeError(o, depth, w);
  if (o instanceof Date) return Number.isNaN(o.getTime()) ? 'Invalid Date' : o.toISOString();
  if (ArrayBuffer.isView(o)) return `[Binary ${o.byteLength} bytes]`;
  if (o instanceof ArrayBuffer || o instanceof SharedArrayBuffer) return `[Binary ${o.byteLength} bytes]`;
  if (o instanceof URL) return scrubString(o.href, w.secrets);
  if (o instanceof RegExp) return scrubString(String(o), w.secrets);
  if (o instanceof Set) return walk([...o], depth, w);
  if (o instanceof Map) {
    const out: Record<string, unknown> = {};
    let count = 0;
    for (const [k, v] of o) {
      if (count++ >= MAX_OBJECT_KEYS) {
        out['[more]'] = `${o.size - MAX_OBJECT_KEYS} more entries`;
        break;
      }
      const key = typeof k === 'string' ? k : String(k);
      setProp(out, scrubString(key, w.secrets), redactedOrWalk(key, v, depth, w));
    }
    return out;
  }
  if (isRequestLike(o)) return serializeRequest(o, w.secrets);
  if (isResponseLike(o)) return serializeResponse(o);
  const withJson = o as { toJSON?: unknown };
  if (typeof withJson.toJSON === 'function') {
    return walk((withJson.toJSON as () => unknown).call(o), depth + 1, w);
  }
  const keys = Object.keys(o);
  const out: Record<string, unknown> = {};
  const n = Math.min(keys.length, MAX_OBJECT_KEYS);
  for (let i = 0; i < n; i++) {
    const key = keys[i] as string;
    let v: unknown;
    try {
      v = (o as Record<string, unknown>)[key];
    } catch {
      v = '[Unreadable]';
    }
    setProp(out, scrubString(key, w.secrets), redactedOrWalk(key, v, depth, w));
  }
  if (keys.length > n) out['[more]'] = `${keys.length - n} more keys`;
  return out;
}

/**
 * Deep copy-and-scrub of any value for logging (see the rules at the top of this file). Depth is
 * bounded (8), arrays keep 100 items, objects 200 keys, 5000 values in all; cycles become
 * "[Circular]". Errors become `{ type, message, code?, statusCode?, status?, stack?, cause? }`,
 * all scrubbed, `stack` only with `includeStack`.
 */
export function sanitizeForLog(value: unknown, knownSecrets: readonly string[], options: SanitizeOptions = {}): unknown {
  return walk(value, 0, newWalk(prepareSecrets(knownSecrets), options.includeStack === true));
}

// ---------------------------------------------------------------------------------------------
// Serializers

interface ScrubContext {
  secrets: readonly string[];
  includeStack: boolean;
}

/**
 * The context of the log call in progress (set by `hooks.logMethod`, which runs pino's write
 * synchronously), so formatters and serializers see the same secrets and stack setting.
 */
let active: ScrubContext | undefined;

function activeWalk(): Walk {
  return newWalk(active?.secrets ?? [], active?.includeStack ?? false);
}

/** `{ method, url (scrubbed), requestId, ip, userAgent }`; never headers. Fastify `serializers.req`. */
export function requestSerializer(req: LoggableRequest): object {
  if (typeof req !== 'object' || req === null) return { value: walk(req, 0, activeWalk()) };
  if (alreadySanitized.has(req)) return req;
  if (typeof req.method === 'string' && typeof req.headers === 'object' && req.headers !== null) {
    return serializeRequest(req, active?.secrets ?? []);
  }
  return walk(req, 0, activeWalk()) as object;
}

/** `{ statusCode }`. Fastify `serializers.res`. */
export function responseSerializer(res: { statusCode: number }): object {
  if (typeof res !== 'object' || res === null) return { statusCode: undefined };
  if (alreadySanitized.has(res)) return res;
  return serializeResponse(res);
}

function errorSerializer(err: unknown): unknown {
  if (typeof err === 'object' && err !== null && alreadySanitized.has(err)) return err;
  return walk(err, 0, activeWalk());
}

// ---------------------------------------------------------------------------------------------
// Message formatting (printf-style, as pino does, so the finished message can be scrubbed)

function jsonOf(v: unknown, w: Walk): string {
  try {
    return JSON.stringify(walk(v, 0, w)) ?? 'undefined';
  } catch {
    return '"[Unserializable]"';
  }
}

function formatMessage(template: string, params: readonly unknown[], w: Walk): string {
  let out = '';
  let last = 0;
  let a = 0;
  for (let i = 0; i < template.length - 1; i++) {
    if (template.charCodeAt(i) !== 37 /* % */) continue;
    const c = template.charAt(i + 1);
    let piece: string | undefined;
    if (c === '%') {
      piece = '%';
    } else if (a < params.length) {
      const p = params[a];
      if (c === 's') piece = String(p);
      else if ((c === 'd' || c === 'f') && p != null) piece = String(Number(p));
      else if (c === 'i' && p != null) piece = String(Math.floor(Number(p)));
      else if ((c === 'o' || c === 'O' || c === 'j') && p !== undefined) {
        piece = typeof p === 'string' ? `'${p}'` : typeof p === 'function' ? p.name || '<anonymous>' : jsonOf(p, w);
      }
      if ('sdfioOj'.includes(c)) a++;
    }
    if (piece !== undefined) {
      out += template.slice(last, i) + piece;
      last = i + 2;
      i++;
    }
  }
  return last === 0 ? template : out + template.slice(last);
}

/** Rewrites log-method arguments so the message pino writes is already scrubbed. */
function scrubLogArgs(args: readonly unknown[], ctx: ScrubContext): unknown[] {
  const first = args[0];
  if (args.length === 1 && typeof first === 'string') return [scrubString(first, ctx.secrets)];
  if (args.length === 0) return [];
  const w = newWalk(ctx.secrets, ctx.includeStack);
  const hasObject = typeof first === 'object';
  const head: unknown[] = hasObject ? [first] : [];
  const msg = hasObject ? args[1] : first;
  const params = args.slice(hasObject ? 2 : 1);
  if (typeof msg === 'string') {
    const text = params.length > 0 ? formatMessage(msg, params, w) : msg;
    return [...head, scrubString(text, ctx.secrets)];
  }
  if (msg === undefined) {
    if (hasObject && first !== null) {
      // pino would take the message from the Error (or `err`) unscrubbed: give it explicitly.
      const derived = derivedErrorMessage(first);
      if (derived !== undefined) return [first, scrubString(derived, ctx.secrets)];
    }
    return head;
  }
  // A non-string message (number, object…): pino stringifies it; hand it a scrubbed copy.
  return [...head, walk(msg, 0, w), ...params.map((p) => walk(p, 0, w))];
}

function derivedErrorMessage(obj: object): string | undefined {
  if (isErrorValue(obj)) return typeof obj.message === 'string' ? obj.message : undefined;
  const rec = obj as { msg?: unknown; err?: unknown };
  if (rec.msg !== undefined) return undefined;
  const err = rec.err as { message?: unknown } | null | undefined;
  return err && typeof err === 'object' && typeof err.message === 'string' ? err.message : undefined;
}

// ---------------------------------------------------------------------------------------------
// Logger

function hasOwnKeys(obj: object): boolean {
  for (const key in obj) if (Object.prototype.hasOwnProperty.call(obj, key)) return true;
  return false;
}

/**
 * A pino logger writing JSON lines (ISO `time`), scrubbing every line as described above.
 * @example const log = createLogger({ level: 'info', knownSecrets: () => [config.metricsToken] });
 */
export function createLogger(options: LoggerOptions): pino.Logger {
  const getSecrets = options.knownSecrets;
  const secretsNow = (): readonly string[] => {
    if (!getSecrets) return [];
    try {
      return prepareSecrets(getSecrets());
    } catch {
      return [];
    }
  };
  // Assigned once the logger exists; the formatters below run only after that.
  let root: pino.Logger | undefined = undefined;
  const fallbackContext = (): ScrubContext => ({ secrets: secretsNow(), includeStack: (root?.levelVal ?? 30) <= 20 });
  const currentWalk = (): Walk => {
    const ctx = active ?? fallbackContext();
    return newWalk(ctx.secrets, ctx.includeStack);
  };
  const sanitizeRecord = (obj: object): Record<string, unknown> => {
    const out = walk(obj, 0, currentWalk());
    return typeof out === 'object' && out !== null ? (out as Record<string, unknown>) : { value: out };
  };

  const logger = pino(
    {
      level: options.level,
      timestamp: pino.stdTimeFunctions.isoTime,
      serializers: {
        err: errorSerializer,
        req: requestSerializer,
        res: responseSerializer,
      },
      formatters: {
        bindings: (bindings) => sanitizeRecord(bindings),
        // An empty object (the common `log.info('text')` case) has nothing to scrub.
        log: (obj) => (hasOwnKeys(obj) ? sanitizeRecord(obj) : obj),
      },
      hooks: {
        logMethod(args, method) {
          const ctx: ScrubContext = { secrets: secretsNow(), includeStack: this.levelVal <= 20 };
          const previous = active;
          active = ctx;
          try {
            method.apply(this, scrubLogArgs(args, ctx) as Parameters<pino.LogFn>);
          } finally {
            active = previous;
          }
        },
      },
    },
    options.destination,
  );
  root = logger;

  // pino does not pass child bindings through formatters.bindings; children inherit these
  // wrappers through the prototype chain, so grandchildren are covered too.
  type ChildFn = (this: pino.Logger, bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => pino.Logger;
  const protoChild = logger.child as unknown as ChildFn;
  const protoSetBindings = logger.setBindings;
  function child(this: pino.Logger, bindings: pino.Bindings, childOptions?: pino.ChildLoggerOptions): pino.Logger {
    const opts =
      childOptions && typeof childOptions.msgPrefix === 'string'
        ? { ...childOptions, msgPrefix: scrubString(childOptions.msgPrefix, secretsNow()) }
        : childOptions;
    // The per-request child carries only the server-generated request id: nothing to scrub.
    const keys = bindings ? Object.keys(bindings) : [];
    if (keys.length === 1 && keys[0] === 'requestId' && typeof bindings.requestId === 'string' && UUID_RE.test(bindings.requestId)) {
      return protoChild.call(this, bindings, opts);
    }
    return protoChild.call(this, sanitizeRecord(bindings ?? {}), opts);
  }
  function setBindings(this: pino.Logger, bindings: pino.Bindings): void {
    protoSetBindings.call(this, sanitizeRecord(bindings ?? {}));
  }
  logger.child = child as unknown as typeof logger.child;
  logger.setBindings = setBindings;
  return logger;
}
