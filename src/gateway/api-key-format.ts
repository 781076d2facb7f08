/**
 * The Gatehouse API key format (GW-1).
 *
 *   gatehouse_ 3kT9wQ0bZr7LmN2x 9fH2kL0pQ7rS5tU1vW3xY8zA4bC6dE0g 1a2B3c
 *   \_prefix_/ \____id (16)____/ \_________secret (32)___________/ \crc/
 *
 * written without the spaces: `gatehouse_` followed by 54 base62 characters (0-9, A-Z, a-z).
 *
 * - prefix `gatehouse_`: says what the key is to anyone who finds one (and to secret scanners); it
 *   shares no prefix with other vendors' keys. The underscore keeps the whole key one "word" for
 *   double-click selection.
 * - id, 16 base62 characters (~95 bits): public; the row the key is looked up by. Random, so ids say
 *   nothing about order or count.
 * - secret, 32 base62 characters (~190 bits): only its SHA-256 is stored.
 * - checksum, 6 base62 characters: CRC-32 of `prefix + id + secret` (ASCII), as a big-endian base62
 *   number left-padded with '0'. A scanner recomputes it to tell a real leaked key from a random
 *   match without asking the server. CRC-32 catches every single-character change, since a changed
 *   character is an error burst of at most 8 bits. It is not a MAC: anyone can make a well-formed
 *   key, which is fine because only the secret authenticates.
 *
 * The fields have fixed widths, so no separator is needed between them.
 */
import { hash, randomBytes, timingSafeEqual } from 'node:crypto';
import { crc32 } from 'node:zlib';

/** The fixed prefix of every Gatehouse API key. */
export const API_KEY_PREFIX = 'gatehouse_';
export const API_KEY_ID_LENGTH = 16;
export const API_KEY_SECRET_LENGTH = 32;
export const API_KEY_CHECKSUM_LENGTH = 6;
/** Total length of a key: 10 + 16 + 32 + 6 = 64 characters. */
export const API_KEY_LENGTH = API_KEY_PREFIX.length + API_KEY_ID_LENGTH + API_KEY_SECRET_LENGTH + API_KEY_CHECKSUM_LENGTH;

const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const BODY_LENGTH = API_KEY_ID_LENGTH + API_KEY_SECRET_LENGTH + API_KEY_CHECKSUM_LENGTH;

/**
 * Finds Gatehouse API keys in text, for secret scanners (then confirm each hit with `parseApiKey`,
 * which checks the checksum). Not global: make a copy with the `g` flag to find all of them.
 * @example text.match(new RegExp(API_KEY_PATTERN.source, 'g'))
 */
export const API_KEY_PATTERN = /(?<![0-9A-Za-z_])gatehouse_[0-9A-Za-z]{54}(?![0-9A-Za-z_])/;

const BODY_CHARSET = /^[0-9A-Za-z]+$/;

/** `length` uniformly random base62 characters (rejection sampling: no modulo bias). */
function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    // 248 = 4 * 62: bytes at or above it would favour the first characters, so they are dropped.
    for (const byte of randomBytes(length + 8)) {
      if (byte < 248) out += BASE62[byte % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

function encodeChecksum(value: number): string {
  let n = value;
  let out = '';
  for (let i = 0; i < API_KEY_CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

function checksumOf(prefixIdSecret: string): string {
  // The text is ASCII (checked before), so its UTF-8 bytes, which crc32 takes from a string, are its ASCII bytes.
  return encodeChecksum(crc32(prefixIdSecret));
}

/**
 * The stored form of a key's secret: SHA-256, hex.
 *
 * Why not Argon2 like passwords: a slow hash protects low-entropy secrets from guessing after a
 * database leak. A 190-bit random secret cannot be guessed however fast the hash, so a slow hash
 * would only add ~50 ms of CPU to every API call (and a denial-of-service lever) for no gain. The
 * lookup is by id, so no salt is needed to stop precomputation either: the secret is never reused.
 */
export function hashApiKeySecret(secret: string): string {
  // The one-shot hash: no Hash object per call on the request path.
  return hash('sha256', secret, 'hex');
}

/**
 * A new API key. Show `key` to its owner once; store `id` and `secretHash` only.
 * @example const { key, id, secretHash } = generateApiKey()
 */
export function generateApiKey(): { key: string; id: string; secretHash: string } {
  const id = randomBase62(API_KEY_ID_LENGTH);
  const secret = randomBase62(API_KEY_SECRET_LENGTH);
  const head = `${API_KEY_PREFIX}${id}${secret}`;
  return { key: `${head}${checksumOf(head)}`, id, secretHash: hashApiKeySecret(secret) };
}

/**
 * Splits a presented key into id and secret, or null when it is not a well-formed Gatehouse key
 * (wrong prefix, length, characters or checksum). Needs no database, so secret scanners use it too.
 * The checksum comparison runs in constant time.
 * @example parseApiKey(header.slice('Bearer '.length))?.id
 */
export function parseApiKey(text: string): { id: string; secret: string } | null {
  if (typeof text !== 'string' || text.length !== API_KEY_LENGTH || !text.startsWith(API_KEY_PREFIX)) return null;
  const body = text.slice(API_KEY_PREFIX.length);
  if (body.length !== BODY_LENGTH || !BODY_CHARSET.test(body)) return null;
  const head = text.slice(0, API_KEY_LENGTH - API_KEY_CHECKSUM_LENGTH);
  const expected = checksumOf(head);
  // Constant time without two Buffers per call: every character is compared, no early exit.
  let diff = 0;
  for (let i = 0; i < API_KEY_CHECKSUM_LENGTH; i++) diff |= text.charCodeAt(head.length + i) ^ expected.charCodeAt(i);
  if (diff !== 0) return null;
  return {
    id: body.slice(0, API_KEY_ID_LENGTH),
    secret: body.slice(API_KEY_ID_LENGTH, API_KEY_ID_LENGTH + API_KEY_SECRET_LENGTH),
  };
}

/**
 * True when `secret` hashes to `storedHash`, compared in constant time.
 * @example verifyApiKeySecret(parsed.secret, row.secretHash)
 */
export function verifyApiKeySecret(secret: string, storedHash: string): boolean {
  const presented = Buffer.from(hashApiKeySecret(secret), 'utf8');
  const stored = Buffer.from(storedHash, 'utf8');
  // Both are hex SHA-256 digests of fixed length; a stored value of another length is corrupt.
  if (presented.length !== stored.length) return false;
  return timingSafeEqual(presented, stored);
}
