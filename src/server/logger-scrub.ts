/**
 * Log hygiene (DATA-4, logger.ts): which key names are sensitive, and the scrubbing of strings
 * (credentials in URLs, headers and key=value text, JWTs, API keys, e-mail addresses, phone
 * numbers, and the known secrets). The rules are described at the top of logger.ts.
 */
export const REDACTED = '[REDACTED]';

export const MAX_DEPTH = 8;
export const MAX_ARRAY_ITEMS = 100;
export const MAX_OBJECT_KEYS = 200;
/** Values visited per sanitised object; past it everything is "[Truncated]". */
export const MAX_NODES = 5000;
export const MAX_USER_AGENT = 512;
/** Known secrets shorter than this are ignored: they would scrub common words. */
const MIN_SECRET_LENGTH = 8;


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
export const WEAK = 1;
export const STRONG = 2;
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
export function keySensitivity(key: string): Sensitivity {
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
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function scrubString(input: string, secrets: readonly string[]): string {
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
export function prepareSecrets(list: readonly string[]): readonly string[] {
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
