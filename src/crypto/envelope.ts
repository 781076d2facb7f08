/**
 * The sealed-value envelope: how an encrypted column value is stored, and how a DEK is wrapped
 * by a KEK.
 *
 * An envelope is the text `gh1.` followed by base64url (no padding) of:
 *
 * | bytes      | field                                                   |
 * | ---------- | ------------------------------------------------------- |
 * | 0          | format version, 0x01                                    |
 * | 1..4       | KEK version, uint32 big-endian (1..2^32-1)              |
 * | 5..20      | DEK id, the 16 raw bytes of a UUID                      |
 * | 21..32     | AES-GCM nonce (12 bytes)                                |
 * | 33..       | ciphertext || 16-byte tag (so at least 16 bytes)        |
 *
 * Bytes 0..20 are the header. The AES-GCM additional data (`envelopeAad`) binds the header and
 * the place the value belongs to (tenant, subject, table, column, row), so a value copied to
 * another row, column, table, subject or tenant, or re-labelled with another KEK version or DEK
 * id, fails to open.
 *
 * Decoding is strict: one spelling per byte string (canonical base64url, no padding, no
 * whitespace), so a stored value can be compared and indexed as text.
 */
import { aeadOpen, aeadSeal, KEY_BYTES, NONCE_BYTES, TAG_BYTES } from './aead.ts';
import { CryptoError } from './errors.ts';

export const ENVELOPE_PREFIX = 'gh1.';
export const ENVELOPE_FORMAT_VERSION = 0x01;
/** Bytes 0..20: format version, KEK version, DEK id. */
export const ENVELOPE_HEADER_BYTES = 21;
const NONCE_OFFSET = ENVELOPE_HEADER_BYTES;
const SEALED_OFFSET = NONCE_OFFSET + NONCE_BYTES;
const MIN_ENVELOPE_BYTES = SEALED_OFFSET + TAG_BYTES;
const MAX_KEK_VERSION = 0xffff_ffff;

const AAD_DOMAIN = Buffer.from('gatehouse.envelope.v1', 'utf8');

export const WRAPPED_KEY_PREFIX = 'w1.';
const WRAP_DOMAIN = Buffer.from('gatehouse.wrap.v1', 'utf8');

export interface EnvelopeHeader {
  /** The KEK version that wraps the DEK (the keyring's lookup key for the KEK). */
  kekVersion: number;
  /** The DEK id: a UUID string; decoding always yields it lowercase. */
  dekId: string;
}

/** Where a sealed value lives. Every field is bound into the AAD. */
export interface SealContext {
  tenantId: string;
  /** The user or other subject the value belongs to; absent and '' are the same binding. */
  subjectId?: string;
  table: string;
  column: string;
  rowId: string;
}

export interface DecodedEnvelope {
  header: EnvelopeHeader;
  /** Bytes 0..20 of the decoded envelope (version, KEK version, DEK id). */
  headerBytes: Buffer;
  nonce: Buffer;
  /** ciphertext || tag */
  sealed: Buffer;
}

// ---------------------------------------------------------------------------------------------
// UUIDs

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The 16 bytes of a UUID in 8-4-4-4-12 hex form (either case). TypeError otherwise. */
export function uuidToBytes(uuid: string): Buffer {
  const bytes = Buffer.allocUnsafe(16);
  writeUuid(uuid, bytes, 0);
  return bytes;
}

function writeUuid(uuid: string, target: Buffer, offset: number): void {
  if (typeof uuid !== 'string' || !UUID_RE.test(uuid)) throw new TypeError('not a UUID in 8-4-4-4-12 hex form');
  target.write(uuid.slice(0, 8), offset, 4, 'hex');
  target.write(uuid.slice(9, 13), offset + 4, 2, 'hex');
  target.write(uuid.slice(14, 18), offset + 6, 2, 'hex');
  target.write(uuid.slice(19, 23), offset + 8, 2, 'hex');
  target.write(uuid.slice(24, 36), offset + 10, 6, 'hex');
}

/** The lowercase 8-4-4-4-12 form of 16 bytes. TypeError for any other length. */
export function bytesToUuid(bytes: Buffer): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) throw new TypeError('a UUID is 16 bytes');
  const hex = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

// ---------------------------------------------------------------------------------------------
// Strict base64url

/**
 * Decodes canonical unpadded base64url, or returns undefined. Node's decoder is lenient (it
 * skips characters outside the alphabet, accepts '+', '/' and '=', ignores stray trailing bits),
 * so the decoded bytes are re-encoded and must give back exactly `text`: that refuses every
 * other spelling (whitespace, padding, the standard alphabet, junk, non-zero trailing bits).
 */
function decodeBase64urlStrict(text: string): Buffer | undefined {
  if (text.length % 4 === 1) return undefined;
  const bytes = Buffer.from(text, 'base64url');
  return bytes.toString('base64url') === text ? bytes : undefined;
}

// ---------------------------------------------------------------------------------------------
// Envelope encoding

/**
 * The last header encoded: a keyring seals many values in a row under one DEK, and the header
 * bytes (public data, never handed out: callers only get copies inside new buffers) are reused.
 */
let lastHeader: { kekVersion: number; dekId: string; bytes: Buffer } | undefined;

function encodeHeader(header: EnvelopeHeader): Buffer {
  if (typeof header !== 'object' || header === null) throw new TypeError('header must be an object');
  const { kekVersion, dekId } = header;
  if (lastHeader !== undefined && lastHeader.kekVersion === kekVersion && lastHeader.dekId === dekId) return lastHeader.bytes;
  if (!Number.isInteger(kekVersion) || kekVersion < 1 || kekVersion > MAX_KEK_VERSION) {
    throw new TypeError('kekVersion must be an integer from 1 to 2^32-1');
  }
  const bytes = Buffer.allocUnsafe(ENVELOPE_HEADER_BYTES);
  bytes[0] = ENVELOPE_FORMAT_VERSION;
  bytes.writeUInt32BE(kekVersion, 1);
  writeUuid(dekId, bytes, 5);
  lastHeader = { kekVersion, dekId, bytes };
  return bytes;
}

function encodeParts(headerBytes: Buffer, nonce: Buffer, sealed: Buffer): string {
  if (!(nonce instanceof Uint8Array) || nonce.length !== NONCE_BYTES) throw new TypeError(`nonce must be ${NONCE_BYTES} bytes`);
  if (!(sealed instanceof Uint8Array) || sealed.length < TAG_BYTES) throw new TypeError(`sealed must be at least ${TAG_BYTES} bytes`);
  const out = Buffer.allocUnsafe(SEALED_OFFSET + sealed.length);
  out.set(headerBytes, 0);
  out.set(nonce, NONCE_OFFSET);
  out.set(sealed, SEALED_OFFSET);
  return ENVELOPE_PREFIX + out.toString('base64url');
}

/** The envelope text of a header, nonce and `ciphertext || tag`. TypeError for bad parts. */
export function encodeEnvelope(header: EnvelopeHeader, nonce: Buffer, sealed: Buffer): string {
  return encodeParts(encodeHeader(header), nonce, sealed);
}

type ParseFailure = 'ENVELOPE_MALFORMED' | 'ENVELOPE_VERSION_UNSUPPORTED';

/** The checked bytes of an envelope, or why they are refused. */
function parseBytes(text: unknown): Buffer | ParseFailure {
  if (typeof text !== 'string' || !text.startsWith(ENVELOPE_PREFIX)) return 'ENVELOPE_MALFORMED';
  const bytes = decodeBase64urlStrict(text.slice(ENVELOPE_PREFIX.length));
  if (bytes === undefined || bytes.length === 0) return 'ENVELOPE_MALFORMED';
  // The version byte decides the layout, so it is read before any length is judged.
  if (bytes[0] !== ENVELOPE_FORMAT_VERSION) return 'ENVELOPE_VERSION_UNSUPPORTED';
  if (bytes.length < MIN_ENVELOPE_BYTES) return 'ENVELOPE_MALFORMED';
  if (bytes.readUInt32BE(1) < 1) return 'ENVELOPE_MALFORMED';
  return bytes;
}

const PARSE_MESSAGES = {
  ENVELOPE_MALFORMED: 'the value is not a well-formed gh1 envelope',
  ENVELOPE_VERSION_UNSUPPORTED: 'the envelope format version is not supported',
} as const;

/**
 * Parses an envelope without decrypting it (the keyring reads `header.dekId` to find the DEK).
 * Throws `CryptoError('ENVELOPE_MALFORMED')` for a wrong prefix, non-canonical or invalid
 * base64url, a short value or a zero KEK version, and `ENVELOPE_VERSION_UNSUPPORTED` for a
 * format byte other than 0x01. The returned buffers are views of one decoded buffer.
 */
export function decodeEnvelope(text: string): DecodedEnvelope {
  const bytes = checkedBytes(text);
  return {
    header: { kekVersion: bytes.readUInt32BE(1), dekId: bytesToUuid(bytes.subarray(5, ENVELOPE_HEADER_BYTES)) },
    headerBytes: bytes.subarray(0, ENVELOPE_HEADER_BYTES),
    nonce: bytes.subarray(NONCE_OFFSET, SEALED_OFFSET),
    sealed: bytes.subarray(SEALED_OFFSET),
  };
}

function checkedBytes(text: string): Buffer {
  const bytes = parseBytes(text);
  if (typeof bytes === 'string') throw new CryptoError(bytes, PARSE_MESSAGES[bytes]);
  return bytes;
}

/** True exactly when `decodeEnvelope(text)` would succeed (no decryption: syntax only). */
export function isEnvelope(text: unknown): boolean {
  return typeof parseBytes(text) !== 'string';
}

// ---------------------------------------------------------------------------------------------
// AAD

function checkField(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`SealContext.${name} must be a string`);
  // Lone surrogates would all encode to U+FFFD: two different strings, one AAD.
  if (!value.isWellFormed()) throw new TypeError(`SealContext.${name} is not well-formed Unicode`);
  return value;
}

/** uint32 length of the domain label, then the label: the constant start of every AAD. */
const AAD_PREFIX = Buffer.concat([Buffer.from([0, 0, 0, AAD_DOMAIN.length]), AAD_DOMAIN]);

function writeField(aad: Buffer, at: number, value: string, length: number): number {
  aad.writeUInt32BE(length, at);
  return at + 4 + aad.write(value, at + 4, length, 'utf8');
}

/**
 * The AES-GCM additional data of an envelope: an unambiguous encoding of
 *
 *   len(domain) domain | len(tenantId) tenantId | len(subjectId) subjectId | len(table) table |
 *   len(column) column | len(rowId) rowId | headerBytes (21 bytes)
 *
 * where domain = "gatehouse.envelope.v1", each string is UTF-8 and each len is its byte length
 * as uint32 big-endian. An absent subjectId is encoded as ''. Every field is length-prefixed, so
 * no two different contexts share an encoding (table 'ab' + column 'c' differs from table 'a' +
 * column 'bc'). Strings must be well-formed Unicode (no lone surrogates): TypeError otherwise.
 */
export function envelopeAad(headerBytes: Buffer, ctx: SealContext): Buffer {
  if (!(headerBytes instanceof Uint8Array) || headerBytes.length !== ENVELOPE_HEADER_BYTES) {
    throw new TypeError(`headerBytes must be ${ENVELOPE_HEADER_BYTES} bytes`);
  }
  if (typeof ctx !== 'object' || ctx === null) throw new TypeError('SealContext must be an object');
  const tenantId = checkField('tenantId', ctx.tenantId);
  const subjectId = ctx.subjectId === undefined ? '' : checkField('subjectId', ctx.subjectId);
  const table = checkField('table', ctx.table);
  const column = checkField('column', ctx.column);
  const rowId = checkField('rowId', ctx.rowId);
  const lt = Buffer.byteLength(tenantId, 'utf8');
  const ls = Buffer.byteLength(subjectId, 'utf8');
  const lb = Buffer.byteLength(table, 'utf8');
  const lc = Buffer.byteLength(column, 'utf8');
  const lr = Buffer.byteLength(rowId, 'utf8');
  const aad = Buffer.allocUnsafe(AAD_PREFIX.length + 20 + lt + ls + lb + lc + lr + ENVELOPE_HEADER_BYTES);
  let at = AAD_PREFIX.copy(aad, 0);
  at = writeField(aad, at, tenantId, lt);
  at = writeField(aad, at, subjectId, ls);
  at = writeField(aad, at, table, lb);
  at = writeField(aad, at, column, lc);
  at = writeField(aad, at, rowId, lr);
  aad.set(headerBytes, at);
  return aad;
}

// ---------------------------------------------------------------------------------------------
// Seal and open with a known DEK

/**
 * Seals `plaintext` under `dek` for the place `ctx`, labelled with `header`; returns envelope text.
 * @example const text = sealWithKey(dek, { kekVersion: 3, dekId }, { tenantId, table: 'users', column: 'email', rowId }, Buffer.from(email))
 */
export function sealWithKey(dek: Buffer, header: EnvelopeHeader, ctx: SealContext, plaintext: Buffer): string {
  const headerBytes = encodeHeader(header);
  const { nonce, sealed } = aeadSeal(dek, plaintext, envelopeAad(headerBytes, ctx));
  return encodeParts(headerBytes, nonce, sealed);
}

/**
 * Opens envelope `text` with `dek` for the place `ctx`. Throws `CryptoError` with
 * ENVELOPE_MALFORMED / ENVELOPE_VERSION_UNSUPPORTED (syntax) or DECRYPT_FAILED (wrong key, wrong
 * context, any altered byte).
 */
export function openWithKey(dek: Buffer, text: string, ctx: SealContext): Buffer {
  const bytes = checkedBytes(text);
  const aad = envelopeAad(bytes.subarray(0, ENVELOPE_HEADER_BYTES), ctx);
  return aeadOpen(dek, bytes.subarray(NONCE_OFFSET, SEALED_OFFSET), bytes.subarray(SEALED_OFFSET), aad);
}

// ---------------------------------------------------------------------------------------------
// Wrapping a DEK under a KEK

function wrapAad(aad: Buffer): Buffer {
  if (!(aad instanceof Uint8Array)) throw new TypeError('aad must be a Buffer');
  const out = Buffer.allocUnsafe(4 + WRAP_DOMAIN.length + aad.length);
  const at = out.writeUInt32BE(WRAP_DOMAIN.length, 0);
  WRAP_DOMAIN.copy(out, at);
  out.set(aad, at + WRAP_DOMAIN.length);
  return out;
}

/**
 * Wraps key material (a DEK, or any secret of 1..4096 bytes) under a 32-byte KEK with
 * AES-256-GCM: `w1.` + base64url(nonce || ciphertext || tag). The caller's `aad` (e.g. the DEK
 * id, the KEK version and the tenant) is bound after an internal domain label, so a wrapped key
 * can never be opened as an envelope, nor an envelope as a wrapped key.
 */
export function wrapKey(kek: Buffer, dek: Buffer, aad: Buffer): string {
  if (!(dek instanceof Uint8Array) || dek.length < 1 || dek.length > 4096) {
    throw new TypeError('the key to wrap must be a Buffer of 1 to 4096 bytes');
  }
  const { nonce, sealed } = aeadSeal(kek, dek, wrapAad(aad));
  return WRAPPED_KEY_PREFIX + Buffer.concat([nonce, sealed]).toString('base64url');
}

/**
 * Unwraps `wrapped` with `kek` and the same `aad` as at wrapping. Throws
 * `CryptoError('ENVELOPE_MALFORMED')` for text that is not a `w1.` value and
 * `CryptoError('DECRYPT_FAILED')` for a wrong KEK, wrong aad or any altered byte.
 */
export function unwrapKey(kek: Buffer, wrapped: string, aad: Buffer): Buffer {
  if (!(kek instanceof Uint8Array) || kek.length !== KEY_BYTES) throw new TypeError(`kek must be ${KEY_BYTES} bytes`);
  const fullAad = wrapAad(aad);
  if (typeof wrapped !== 'string' || !wrapped.startsWith(WRAPPED_KEY_PREFIX)) {
    throw new CryptoError('ENVELOPE_MALFORMED', 'the value is not a well-formed w1 wrapped key');
  }
  const bytes = decodeBase64urlStrict(wrapped.slice(WRAPPED_KEY_PREFIX.length));
  if (bytes === undefined || bytes.length < NONCE_BYTES + TAG_BYTES + 1) {
    throw new CryptoError('ENVELOPE_MALFORMED', 'the value is not a well-formed w1 wrapped key');
  }
  return aeadOpen(kek, bytes.subarray(0, NONCE_BYTES), bytes.subarray(NONCE_BYTES), fullAad);
}
