/**
 * AES-256-GCM with a 96-bit nonce and a full 128-bit tag, over node:crypto (OpenSSL).
 *
 * - `aeadSeal` draws a fresh random nonce per call unless one is passed (known-answer tests
 *   only: a nonce must never repeat under one key). With random 96-bit nonces a key should seal
 *   fewer than 2^32 values (NIST SP 800-38D, section 8.3); the keyring's per-scope DEKs stay far
 *   below that.
 * - `aeadOpen` authenticates before anything is returned: the tag is set before `final`, and
 *   the decrypted bytes are only handed out once `final` has succeeded (they are zeroed
 *   otherwise). Any failure, a short input or a wrong nonce length included, is one
 *   `CryptoError('DECRYPT_FAILED')` with one message, so callers cannot tell them apart.
 * - Programmer errors (a key that is not 32 bytes, a non-buffer argument) are `TypeError`s.
 *
 * Key objects: `createCipheriv` with a raw Buffer key costs an order of magnitude more than with
 * a prebuilt `KeyObject` (measured ~15 µs vs ~2 µs on Node 24), which would dominate sealing a
 * small value. So each key Buffer gets its KeyObject cached in a WeakMap keyed by that Buffer
 * (collected with it), together with a private copy of the bytes it was built from; every use
 * compares the Buffer's current bytes with that copy and rebuilds on any difference, so a key
 * Buffer that is zeroed or overwritten in place is never used with its old value.
 */
import type { KeyObject } from 'node:crypto';
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { CryptoError } from './errors.ts';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 12;
export const TAG_BYTES = 16;

const ALGORITHM = 'aes-256-gcm';
const DECRYPT_FAILED_MESSAGE = 'the sealed value could not be authenticated';

function checkBytes(name: string, value: unknown): asserts value is Buffer {
  if (!(value instanceof Uint8Array)) throw new TypeError(`${name} must be a Buffer`);
}

function checkKey(key: unknown): asserts key is Buffer {
  checkBytes('key', key);
  if (key.length !== KEY_BYTES) throw new TypeError(`key must be ${KEY_BYTES} bytes`);
}

interface CachedKey {
  bytes: Buffer;
  keyObject: KeyObject;
}
const keyObjects = new WeakMap<Uint8Array, CachedKey>();

/** The KeyObject of `key`'s current bytes (see the module comment). */
function keyObjectOf(key: Buffer): KeyObject {
  const cached = keyObjects.get(key);
  if (cached !== undefined && cached.bytes.equals(key)) return cached.keyObject;
  const bytes = Buffer.from(key); // a private copy: later changes to `key` must not reach it
  const keyObject = createSecretKey(bytes);
  keyObjects.set(key, { bytes, keyObject });
  return keyObject;
}

/**
 * Encrypts and authenticates `plaintext`, binding `aad` (authenticated, not encrypted).
 * Returns the nonce and `ciphertext || tag` (plaintext length + 16 bytes).
 * @example const { nonce, sealed } = aeadSeal(key, Buffer.from('secret'), aad)
 */
export function aeadSeal(
  key: Buffer,
  plaintext: Buffer,
  aad: Buffer,
  nonce: Buffer = randomBytes(NONCE_BYTES),
): { nonce: Buffer; sealed: Buffer } {
  checkKey(key);
  checkBytes('plaintext', plaintext);
  checkBytes('aad', aad);
  checkBytes('nonce', nonce);
  if (nonce.length !== NONCE_BYTES) throw new TypeError(`nonce must be ${NONCE_BYTES} bytes`);
  const cipher = createCipheriv(ALGORITHM, keyObjectOf(key), nonce, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const head = cipher.update(plaintext);
  const tail = cipher.final();
  const tag = cipher.getAuthTag();
  return { nonce, sealed: Buffer.concat([head, tail, tag], head.length + tail.length + tag.length) };
}

/**
 * Authenticates and decrypts `sealed` (`ciphertext || tag`). Throws `CryptoError('DECRYPT_FAILED')`
 * on any failure and never returns unauthenticated bytes.
 * @example const plaintext = aeadOpen(key, nonce, sealed, aad)
 */
export function aeadOpen(key: Buffer, nonce: Buffer, sealed: Buffer, aad: Buffer): Buffer {
  checkKey(key);
  checkBytes('nonce', nonce);
  checkBytes('sealed', sealed);
  checkBytes('aad', aad);
  if (nonce.length !== NONCE_BYTES || sealed.length < TAG_BYTES) {
    throw new CryptoError('DECRYPT_FAILED', DECRYPT_FAILED_MESSAGE);
  }
  const split = sealed.length - TAG_BYTES;
  let head: Buffer | undefined;
  try {
    const decipher = createDecipheriv(ALGORITHM, keyObjectOf(key), nonce, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.subarray(split));
    head = decipher.update(sealed.subarray(0, split));
    const tail = decipher.final(); // throws when the tag does not verify
    return tail.length === 0 ? head : Buffer.concat([head, tail]);
  } catch {
    head?.fill(0);
    throw new CryptoError('DECRYPT_FAILED', DECRYPT_FAILED_MESSAGE);
  }
}
