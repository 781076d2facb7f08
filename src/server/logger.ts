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
 * The parts: the sensitive names and the scrubbing of strings in logger-scrub.ts, the deep
 * copy-and-scrub of values (`sanitizeForLog`) in logger-sanitize.ts, the serializers, message
 * formatting and the pino hooks here.
 */
import pino from 'pino';
import { type LoggableRequest, prepareSecrets, scrubString, UUID_RE } from './logger-scrub.ts';
import { alreadySanitized, isErrorValue, newWalk, serializeRequest, serializeResponse, type Walk, walk } from './logger-sanitize.ts';

export { REDACTED, type LoggableRequest, type SanitizeOptions } from './logger-scrub.ts';
export { sanitizeForLog } from './logger-sanitize.ts';

export interface LoggerOptions {
  level: string;
  /** Where lines go; default stdout. Tests pass an in-memory stream. */
  destination?: pino.DestinationStream;
  /** Values to scrub anywhere (configured tokens…). A function so config reloads are seen. */
  knownSecrets?: () => readonly string[];
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
