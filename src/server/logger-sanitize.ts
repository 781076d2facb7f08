/**
 * Log hygiene (DATA-4, logger.ts): the deep copy-and-scrub of any value for logging
 * (`sanitizeForLog`), and the serialisation of errors, requests and responses it uses.
 */
import { keySensitivity, type LoggableRequest, MAX_ARRAY_ITEMS, MAX_DEPTH, MAX_NODES, MAX_OBJECT_KEYS, MAX_USER_AGENT, prepareSecrets, REDACTED, type SanitizeOptions, scrubString, STRONG, WEAK } from './logger-scrub.ts';

// ---------------------------------------------------------------------------------------------
// Deep copy-and-scrub

export interface Walk {
  secrets: readonly string[];
  includeStack: boolean;
  nodes: number;
  ancestors: Set<object>;
}

/** Objects produced by the error/request/response serialisation: serializers pass them through. */
export const alreadySanitized = new WeakSet<object>();

function mark<T extends object>(o: T): T {
  alreadySanitized.add(o);
  return o;
}

export function newWalk(secrets: readonly string[], includeStack: boolean): Walk {
  return { secrets, includeStack, nodes: 0, ancestors: new Set() };
}

export function isErrorValue(v: object): v is Error {
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

export function serializeRequest(req: LoggableRequest, secrets: readonly string[]): Record<string, unknown> {
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

export function serializeResponse(res: { statusCode?: unknown }): Record<string, unknown> {
  return mark({ statusCode: typeof res.statusCode === 'number' ? res.statusCode : undefined });
}

export function walk(value: unknown, depth: number, w: Walk): unknown {
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
