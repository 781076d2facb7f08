/**
 * Ed25519 known answers and behaviour.
 *
 * Vectors:
 * - RFC 8032 (Edwards-Curve Digital Signature Algorithm), section 7.1 "Test Vectors for
 *   Ed25519", TEST 1 (empty message), TEST 2 (1 byte), TEST 3 (2 bytes): SECRET KEY (the 32-byte
 *   seed), PUBLIC KEY, MESSAGE, SIGNATURE.
 * - RFC 8037 (CFRG Elliptic Curve Diffie-Hellman and Signatures in JOSE), Appendix A.3: the
 *   RFC 7638 SHA-256 JWK thumbprint of the TEST 1 public key (x =
 *   11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo, Appendix A.2).
 */
import { describe, expect, it } from 'vitest';
import type { Ed25519PublicJwk } from '../../src/crypto/signing.ts';
import { ed25519Thumbprint, generateSigningKey, publicJwkFromPrivate, signEd25519, verifyEd25519 } from '../../src/crypto/signing.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
/** PKCS#8 DER of an Ed25519 private key: fixed prefix, then the 32-byte seed (RFC 8410). */
const PKCS8_PREFIX = hex('302e020100300506032b657004220420');
const pkcs8FromSeed = (seed: Buffer): Buffer => Buffer.concat([PKCS8_PREFIX, seed]);

const RFC8032_TESTS = [
  {
    name: 'TEST 1',
    secret: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    public: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2',
    secret: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    public: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3',
    secret: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    public: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

describe('Ed25519 known answers (RFC 8032 section 7.1)', () => {
  for (const t of RFC8032_TESTS) {
    it(`${t.name}: derives the public key and the exact signature, and verifies it`, () => {
      const pkcs8 = pkcs8FromSeed(hex(t.secret));
      const jwk = publicJwkFromPrivate(pkcs8);
      expect(Buffer.from(jwk.x, 'base64url').toString('hex')).toBe(t.public);
      expect(jwk).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      const signature = signEd25519(pkcs8, hex(t.message));
      expect(signature.toString('hex')).toBe(t.signature);
      expect(verifyEd25519(jwk, hex(t.message), hex(t.signature))).toBe(true);
    });

    it(`${t.name}: rejects the signature with any one bit flipped, or over another message`, () => {
      const jwk = publicJwkFromPrivate(pkcs8FromSeed(hex(t.secret)));
      const message = hex(t.message);
      const signature = hex(t.signature);
      for (let bit = 0; bit < signature.length * 8; bit++) {
        const bad = Buffer.from(signature);
        bad[bit >> 3] = (bad[bit >> 3] as number) ^ (1 << (bit & 7));
        expect(verifyEd25519(jwk, message, bad)).toBe(false);
      }
      expect(verifyEd25519(jwk, Buffer.concat([message, Buffer.from([0])]), signature)).toBe(false);
    });
  }

  it('kid is the RFC 7638 thumbprint: RFC 8037 Appendix A.3 for the TEST 1 key', () => {
    const expected = 'kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k';
    expect(ed25519Thumbprint('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo')).toBe(expected);
    const jwk = publicJwkFromPrivate(pkcs8FromSeed(hex(RFC8032_TESTS[0]?.secret ?? '')));
    expect(jwk.x).toBe('11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo');
    expect(jwk.kid).toBe(expected);
  });
});

/** Another spelling of the same 32 bytes: the last character with its 2 unused bits set. */
function nonCanonicalTwin(x: string): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  const last = alphabet.indexOf(x.slice(-1));
  const twin = x.slice(0, -1) + alphabet.charAt(last | 0b11);
  if (twin === x) return x.slice(0, -1) + alphabet.charAt(last & ~0b11 | 0b01);
  return twin;
}

describe('generateSigningKey / signEd25519 / verifyEd25519', () => {
  it('generates a PKCS#8 key whose kid and JWK are consistent, and signs verifiably', () => {
    const pair = generateSigningKey();
    expect(pair.privatePkcs8).toHaveLength(48);
    expect(pair.privatePkcs8.subarray(0, 16).equals(PKCS8_PREFIX)).toBe(true);
    expect(pair.kid).toBe(pair.publicJwk.kid);
    expect(pair.kid).toBe(ed25519Thumbprint(pair.publicJwk.x));
    expect(pair.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(publicJwkFromPrivate(pair.privatePkcs8)).toEqual(pair.publicJwk);
    const data = Buffer.from('payload');
    const signature = signEd25519(pair.privatePkcs8, data);
    expect(signature).toHaveLength(64);
    expect(verifyEd25519(pair.publicJwk, data, signature)).toBe(true);
    expect(verifyEd25519(generateSigningKey().publicJwk, data, signature)).toBe(false);
  });

  it('generates distinct keys', () => {
    const kids = new Set(Array.from({ length: 20 }, () => generateSigningKey().kid));
    expect(kids.size).toBe(20);
  });

  it('answers false for signatures of the wrong length or all zeros', () => {
    const pair = generateSigningKey();
    const data = Buffer.from('payload');
    const signature = signEd25519(pair.privatePkcs8, data);
    expect(verifyEd25519(pair.publicJwk, data, Buffer.alloc(0))).toBe(false);
    expect(verifyEd25519(pair.publicJwk, data, signature.subarray(0, 63))).toBe(false);
    expect(verifyEd25519(pair.publicJwk, data, Buffer.concat([signature, Buffer.alloc(1)]))).toBe(false);
    expect(verifyEd25519(pair.publicJwk, data, Buffer.alloc(64))).toBe(false);
  });

  it('throws TypeError for a malformed JWK', () => {
    const { publicJwk } = generateSigningKey();
    const data = Buffer.from('payload');
    const sig = Buffer.alloc(64);
    const bad: unknown[] = [
      null,
      'jwk',
      { ...publicJwk, kty: 'EC' },
      { ...publicJwk, crv: 'Ed448' },
      { ...publicJwk, x: undefined },
      { ...publicJwk, x: publicJwk.x.slice(1) },
      { ...publicJwk, x: `${publicJwk.x}=` },
      { ...publicJwk, x: `${publicJwk.x}AA` },
      { ...publicJwk, x: `+${publicJwk.x.slice(1)}` },
      { ...publicJwk, x: nonCanonicalTwin(publicJwk.x) },
      { ...publicJwk, alg: 'RS256' },
      { ...publicJwk, use: 'enc' },
    ];
    for (const jwk of bad) {
      expect(() => verifyEd25519(jwk as Ed25519PublicJwk, data, sig)).toThrow(TypeError);
    }
  });

  it('throws TypeError for a private key that is not Ed25519 PKCS#8', () => {
    expect(() => signEd25519(Buffer.alloc(48), Buffer.from('x'))).toThrow(TypeError);
    expect(() => signEd25519(PKCS8_PREFIX, Buffer.from('x'))).toThrow(TypeError);
    expect(() => publicJwkFromPrivate(Buffer.from('not a key'))).toThrow(TypeError);
  });
});
