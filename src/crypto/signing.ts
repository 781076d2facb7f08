/**
 * Ed25519 signing keys (RFC 8032) over node:crypto, with public keys as JWKs (RFC 8037).
 *
 * - Private keys travel as PKCS#8 DER (48 bytes: the fixed prefix 302e020100300506032b657004220420
 *   followed by the 32-byte seed); the keyring stores them wrapped under a KEK.
 * - `kid` is the RFC 7638 JWK thumbprint with SHA-256: base64url(SHA-256 of the UTF-8 text
 *   `{"crv":"Ed25519","kty":"OKP","x":"<x>"}`), 43 characters. It is stable, derived from the
 *   public key alone, and what other JOSE libraries compute for the same key.
 * - `verifyEd25519` answers false for any signature that does not verify (including one of the
 *   wrong length) and throws TypeError only for a malformed JWK or non-buffer arguments.
 */
import type { KeyObject } from 'node:crypto';
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify } from 'node:crypto';

export interface Ed25519PublicJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export interface SigningKeyPair {
  kid: string;
  publicJwk: Ed25519PublicJwk;
  privatePkcs8: Buffer;
}

const PUBLIC_KEY_BYTES = 32;
const SIGNATURE_BYTES = 64;
const X_RE = /^[A-Za-z0-9_-]{43}$/;

/** The RFC 7638 SHA-256 thumbprint of an Ed25519 public key given as its JWK `x`. */
export function ed25519Thumbprint(x: string): string {
  // Required members only, in lexicographic order, no whitespace (RFC 7638 section 3.2).
  return createHash('sha256').update(`{"crv":"Ed25519","kty":"OKP","x":"${x}"}`, 'utf8').digest('base64url');
}

function jwkOf(publicKey: KeyObject): Ed25519PublicJwk {
  const { x } = publicKey.export({ format: 'jwk' });
  if (typeof x !== 'string') throw new TypeError('not an Ed25519 key');
  return { kty: 'OKP', crv: 'Ed25519', x, kid: ed25519Thumbprint(x), alg: 'EdDSA', use: 'sig' };
}

function privateKeyOf(privatePkcs8: Buffer): KeyObject {
  if (!(privatePkcs8 instanceof Uint8Array)) throw new TypeError('privatePkcs8 must be a Buffer');
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: Buffer.from(privatePkcs8), format: 'der', type: 'pkcs8' });
  } catch {
    throw new TypeError('privatePkcs8 is not a PKCS#8 DER private key');
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new TypeError('privatePkcs8 is not an Ed25519 key');
  return key;
}

/** A fresh Ed25519 key pair. */
export function generateSigningKey(): SigningKeyPair {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const publicJwk = jwkOf(publicKey);
  return { kid: publicJwk.kid, publicJwk, privatePkcs8: privateKey.export({ format: 'der', type: 'pkcs8' }) };
}

/** The public JWK (with its kid) of a PKCS#8 Ed25519 private key. */
export function publicJwkFromPrivate(privatePkcs8: Buffer): Ed25519PublicJwk {
  return jwkOf(createPublicKey(privateKeyOf(privatePkcs8)));
}

/** The 64-byte Ed25519 signature of `data` (deterministic, RFC 8032 section 5.1.6). */
/**
 * A signing function bound to one private key, parsed once (parsing costs more than signing).
 * @example const sign = ed25519Signer(pkcs8); const sig = sign(data);
 */
export function ed25519Signer(privatePkcs8: Buffer): (data: Buffer) => Buffer {
  const key = privateKeyOf(privatePkcs8);
  return (data) => {
    if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer');
    return sign(null, data, key);
  };
}

export function signEd25519(privatePkcs8: Buffer, data: Buffer): Buffer {
  if (!(data instanceof Uint8Array)) throw new TypeError('data must be a Buffer');
  return sign(null, data, privateKeyOf(privatePkcs8));
}

/**
 * Whether `signature` is a valid Ed25519 signature of `data` under `publicJwk`. Only kty, crv and
 * x are used; `alg` and `use`, when present, must be 'EdDSA' and 'sig'. TypeError for a
 * malformed JWK; false (never a throw) for a bad signature.
 */
export function verifyEd25519(
  publicJwk: Pick<Ed25519PublicJwk, 'kty' | 'crv' | 'x'> & Partial<Ed25519PublicJwk>,
  data: Buffer,
  signature: Buffer,
): boolean {
  if (typeof publicJwk !== 'object' || publicJwk === null) throw new TypeError('publicJwk must be an object');
  const { kty, crv, x, alg, use } = publicJwk as Record<string, unknown>;
  if (kty !== 'OKP' || crv !== 'Ed25519') throw new TypeError('publicJwk is not an Ed25519 OKP key');
  if (typeof x !== 'string' || !X_RE.test(x) || Buffer.from(x, 'base64url').toString('base64url') !== x) {
    throw new TypeError(`publicJwk.x is not base64url of ${PUBLIC_KEY_BYTES} bytes`);
  }
  if (alg !== undefined && alg !== 'EdDSA') throw new TypeError('publicJwk.alg must be EdDSA');
  if (use !== undefined && use !== 'sig') throw new TypeError('publicJwk.use must be sig');
  if (!(data instanceof Uint8Array) || !(signature instanceof Uint8Array)) throw new TypeError('data and signature must be Buffers');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x }, format: 'jwk' });
  } catch {
    throw new TypeError('publicJwk.x is not an Ed25519 public key');
  }
  if (signature.length !== SIGNATURE_BYTES) return false;
  try {
    return verify(null, data, key, signature);
  } catch {
    return false;
  }
}
