/**
 * Canonical JSON (RFC 8785, JCS): the one byte form of an audit event or checkpoint that is
 * hashed and signed, so that any two parties serialising the same value agree on the bytes.
 *
 * Values JSON cannot carry faithfully are refused with a TypeError rather than silently
 * changed, since the bytes signed must be the value the caller holds: undefined at the top level
 * or in an array, functions, symbols, bigints, non-finite numbers, lone surrogates, cycles, and
 * objects that are neither plain nor carry a toJSON (a Map would become `{}`). An undefined
 * object member is left out, as JSON.stringify does.
 */
import canonicalize from 'canonicalize';

function refuse(path: string, what: string): never {
  throw new TypeError(`cannot canonicalize ${what} at ${path}`);
}

function check(value: unknown, path: string, ancestors: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return;
    case 'number':
      if (!Number.isFinite(value)) refuse(path, String(value));
      return;
    case 'undefined':
    case 'function':
    case 'symbol':
    case 'bigint':
      refuse(path, `a ${typeof value}`);
  }
  if (value === null) return;
  const obj = value as object;
  if (ancestors.has(obj)) refuse(path, 'a cycle');
  const toJSON = (obj as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === 'function') {
    check((obj as { toJSON: () => unknown }).toJSON(), path, ancestors);
    return;
  }
  ancestors.add(obj);
  if (Array.isArray(obj)) {
    obj.forEach((item: unknown, i) => check(item, `${path}[${i}]`, ancestors));
  } else {
    const proto: unknown = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) refuse(path, 'an object that is not plain');
    for (const [key, item] of Object.entries(obj)) {
      if (item !== undefined) check(item, `${path}.${key}`, ancestors);
    }
  }
  ancestors.delete(obj);
}

/**
 * The RFC 8785 canonical JSON text of a value. TypeError for a value JSON cannot represent.
 * @example canonicalText({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalText(value: unknown): string {
  check(value, '$', new Set());
  let text: string | undefined;
  try {
    text = canonicalize(value);
  } catch (err) {
    // Lone surrogates are found by the library, not by `check`.
    throw new TypeError(`cannot canonicalize: ${(err as Error).message}`, { cause: err });
  }
  if (typeof text !== 'string') throw new TypeError('cannot canonicalize: no JSON text for this value');
  return text;
}

/**
 * The RFC 8785 canonical JSON of a value as UTF-8 bytes: what the audit log hashes and signs.
 * @example canonicalBytes({ seq: 0, action: 'login' }).toString() // '{"action":"login","seq":0}'
 */
export function canonicalBytes(value: unknown): Buffer {
  return Buffer.from(canonicalText(value), 'utf8');
}

function keysSorted(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return true;
  if (Array.isArray(value)) {
    for (const item of value) if (!keysSorted(item)) return false;
    return true;
  }
  let previous: string | undefined;
  for (const key in value) {
    // RFC 8785 orders members by UTF-16 code units, which is how `<` compares strings.
    if (previous !== undefined && !(previous < key)) return false;
    previous = key;
    if (!keysSorted((value as Record<string, unknown>)[key])) return false;
  }
  return true;
}

/**
 * Whether `text` is already the canonical form of `parsed`, the value `JSON.parse(text)`
 * returned. Much cheaper than canonicalizing: RFC 8785 is JSON.stringify's output (same number
 * and string serialisation) with members sorted, so equal output plus sorted members is
 * canonical. JSON.stringify writes a lone surrogate as an escape that RFC 8785 refuses, hence
 * the `\ud` test. A false answer only means the caller must canonicalize.
 */
export function isCanonicalTextOf(text: string, parsed: unknown): boolean {
  return keysSorted(parsed) && JSON.stringify(parsed) === text && !text.includes('\\ud');
}
