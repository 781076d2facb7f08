/**
 * The gh1 envelope: layout, strict decoding, tamper resistance, context binding (AAD), key
 * wrapping, and a seal/open property test.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { aeadOpen, aeadSeal, KEY_BYTES } from '../../src/crypto/aead.ts';
import type { CryptoErrorCode } from '../../src/crypto/errors.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import type { EnvelopeHeader, SealContext } from '../../src/crypto/envelope.ts';
import {
  bytesToUuid,
  decodeEnvelope,
  encodeEnvelope,
  envelopeAad,
  isEnvelope,
  openWithKey,
  sealWithKey,
  unwrapKey,
  uuidToBytes,
  wrapKey,
} from '../../src/crypto/envelope.ts';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');
const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

const DEK = randomBytes(KEY_BYTES);
const HEADER: EnvelopeHeader = { kekVersion: 7, dekId: '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0' };
const CTX: SealContext = { tenantId: 'tenant-a', subjectId: 'user-1', table: 'users', column: 'email', rowId: 'row-42' };
const PLAINTEXT = Buffer.from('alice@example.com: a secret of 34b');

/** The raw bytes of an envelope, and back. */
const rawOf = (text: string): Buffer => Buffer.from(text.slice(4), 'base64url');
const textOf = (raw: Buffer): string => `gh1.${raw.toString('base64url')}`;

/** Runs `fn`, which must throw a CryptoError with one of `codes`, and never return a value. */
function expectRefused(fn: () => unknown, codes: readonly CryptoErrorCode[], label = ''): CryptoErrorCode {
  let result: unknown;
  try {
    result = fn();
  } catch (err) {
    if (!(err instanceof CryptoError)) throw new Error(`${label}: expected a CryptoError, got ${String(err)}`, { cause: err });
    if (!codes.includes(err.code)) throw new Error(`${label}: expected ${codes.join('/')}, got ${err.code}`, { cause: err });
    return err.code;
  }
  throw new Error(`${label}: expected a refusal, got a value (${Buffer.isBuffer(result) ? `${result.length} bytes` : typeof result})`);
}

describe('uuidToBytes / bytesToUuid', () => {
  it('converts both ways, lowercasing', () => {
    const bytes = uuidToBytes('0F1E2D3C-4B5A-4978-8796-A5B4C3D2E1F0');
    expect(bytes.toString('hex')).toBe('0f1e2d3c4b5a49788796a5b4c3d2e1f0');
    expect(bytesToUuid(bytes)).toBe('0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0');
    const id = randomUUID();
    expect(bytesToUuid(uuidToBytes(id))).toBe(id);
  });

  it('refuses anything else with TypeError', () => {
    for (const bad of ['', '0f1e2d3c4b5a49788796a5b4c3d2e1f0', '0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f', '{0f1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0}', 'zf1e2d3c-4b5a-4978-8796-a5b4c3d2e1f0']) {
      expect(() => uuidToBytes(bad)).toThrow(TypeError);
    }
    expect(() => bytesToUuid(Buffer.alloc(15))).toThrow(TypeError);
    expect(() => bytesToUuid(Buffer.alloc(17))).toThrow(TypeError);
  });
});

describe('envelope layout', () => {
  it('encodes exactly [0x01 | kekVersion u32 BE | dekId 16 | nonce 12 | ciphertext || tag] as gh1.base64url', () => {
    const nonce = hex('000102030405060708090a0b');
    const sealed = hex('ff'.repeat(20));
    const text = encodeEnvelope({ kekVersion: 0x01020304, dekId: HEADER.dekId }, nonce, sealed);
    const expected = Buffer.concat([hex('01'), hex('01020304'), hex('0f1e2d3c4b5a49788796a5b4c3d2e1f0'), nonce, sealed]);
    expect(text).toBe(`gh1.${expected.toString('base64url')}`);
    expect(text).not.toMatch(/[=+/]/);
    const decoded = decodeEnvelope(text);
    expect(decoded.header).toEqual({ kekVersion: 0x01020304, dekId: HEADER.dekId });
    expect(decoded.headerBytes.equals(expected.subarray(0, 21))).toBe(true);
    expect(decoded.nonce.equals(nonce)).toBe(true);
    expect(decoded.sealed.equals(sealed)).toBe(true);
  });

  it('the AAD is the length-prefixed domain and fields, then the header bytes', () => {
    const headerBytes = Buffer.concat([hex('01 00000007'), uuidToBytes(HEADER.dekId)]);
    const u32 = (n: number): Buffer => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(n);
      return b;
    };
    const lp = (s: string): Buffer => Buffer.concat([u32(Buffer.byteLength(s)), Buffer.from(s)]);
    const expected = Buffer.concat([
      hex('00000015'),
      Buffer.from('gatehouse.envelope.v1'),
      lp('tenant-a'),
      lp('user-1'),
      lp('users'),
      lp('email'),
      lp('row-42'),
      headerBytes,
    ]);
    expect(envelopeAad(headerBytes, CTX).equals(expected)).toBe(true);
    // Multi-byte UTF-8 is counted in bytes, and an absent subject is an empty field.
    const unicode = envelopeAad(headerBytes, { tenantId: 'é', table: 't', column: 'c', rowId: 'r' });
    expect(unicode.subarray(25, 31).equals(Buffer.concat([hex('00000002'), Buffer.from('é')]))).toBe(true);
    expect(unicode.subarray(31, 35).equals(hex('00000000'))).toBe(true);
  });

  it('seals and opens; the decoded header is what was sealed', () => {
    const text = sealWithKey(DEK, HEADER, CTX, PLAINTEXT);
    expect(text.startsWith('gh1.')).toBe(true);
    expect(isEnvelope(text)).toBe(true);
    expect(decodeEnvelope(text).header).toEqual(HEADER);
    expect(openWithKey(DEK, text, CTX).equals(PLAINTEXT)).toBe(true);
    expect(rawOf(text)).toHaveLength(21 + 12 + PLAINTEXT.length + 16);
    // A fresh nonce per seal: the same value never seals to the same text.
    expect(sealWithKey(DEK, HEADER, CTX, PLAINTEXT)).not.toBe(text);
  });

  it('is the composition of aeadSeal, envelopeAad and encodeEnvelope (a fixed-nonce envelope opens)', () => {
    const nonce = hex('cafebabefacedbaddecaf888');
    const headerBytes = Buffer.concat([hex('01 00000007'), uuidToBytes(HEADER.dekId)]);
    const { sealed } = aeadSeal(DEK, PLAINTEXT, envelopeAad(headerBytes, CTX), nonce);
    const text = encodeEnvelope(HEADER, nonce, sealed);
    expect(openWithKey(DEK, text, CTX).equals(PLAINTEXT)).toBe(true);
  });

  it('headers alternating between calls each encode their own KEK version and DEK id', () => {
    const other: EnvelopeHeader = { kekVersion: 8, dekId: randomUUID() };
    const sameIdOtherVersion: EnvelopeHeader = { ...HEADER, kekVersion: 9 };
    for (const h of [HEADER, other, HEADER, sameIdOtherVersion, other, { ...HEADER }, HEADER]) {
      const text = sealWithKey(DEK, h, CTX, PLAINTEXT);
      expect(decodeEnvelope(text).header).toEqual(h);
      expect(openWithKey(DEK, text, CTX).equals(PLAINTEXT)).toBe(true);
    }
  });

  it('seals an empty value', () => {
    const text = sealWithKey(DEK, HEADER, CTX, Buffer.alloc(0));
    expect(rawOf(text)).toHaveLength(49);
    expect(openWithKey(DEK, text, CTX)).toHaveLength(0);
  });

  it('refuses bad parts with TypeError', () => {
    const nonce = randomBytes(12);
    const sealed = randomBytes(16);
    expect(() => encodeEnvelope({ kekVersion: 0, dekId: HEADER.dekId }, nonce, sealed)).toThrow(TypeError);
    expect(() => encodeEnvelope({ kekVersion: 2 ** 32, dekId: HEADER.dekId }, nonce, sealed)).toThrow(TypeError);
    expect(() => encodeEnvelope({ kekVersion: 1.5, dekId: HEADER.dekId }, nonce, sealed)).toThrow(TypeError);
    expect(() => encodeEnvelope({ kekVersion: 1, dekId: 'not-a-uuid' }, nonce, sealed)).toThrow(TypeError);
    expect(() => encodeEnvelope(HEADER, randomBytes(11), sealed)).toThrow(TypeError);
    expect(() => encodeEnvelope(HEADER, nonce, randomBytes(15))).toThrow(TypeError);
    expect(() => sealWithKey(randomBytes(16), HEADER, CTX, PLAINTEXT)).toThrow(TypeError);
    expect(() => envelopeAad(Buffer.alloc(20), CTX)).toThrow(TypeError);
    expect(() => sealWithKey(DEK, HEADER, { ...CTX, rowId: 42 as unknown as string }, PLAINTEXT)).toThrow(TypeError);
    // Lone surrogates would all become U+FFFD in UTF-8: two strings, one AAD. Refused.
    expect(() => sealWithKey(DEK, HEADER, { ...CTX, tenantId: 'a\ud800' }, PLAINTEXT)).toThrow(TypeError);
  });
});

describe('tamper resistance', () => {
  const text = sealWithKey(DEK, HEADER, CTX, PLAINTEXT);
  const raw = rawOf(text);

  it('every single-bit flip of every byte fails to open, and none returns plaintext', () => {
    const seen = new Map<CryptoErrorCode, number>();
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(raw);
        bad[i] = (bad[i] as number) ^ (1 << bit);
        // Byte 0 is the format version; bytes 1..4 the KEK version (0 is malformed); the rest
        // can only fail authentication.
        const codes: CryptoErrorCode[] =
          i === 0 ? ['ENVELOPE_VERSION_UNSUPPORTED'] : i <= 4 ? ['DECRYPT_FAILED', 'ENVELOPE_MALFORMED'] : ['DECRYPT_FAILED'];
        const code = expectRefused(() => openWithKey(DEK, textOf(bad), CTX), codes, `byte ${i} bit ${bit}`);
        seen.set(code, (seen.get(code) ?? 0) + 1);
      }
    }
    expect(seen.get('ENVELOPE_VERSION_UNSUPPORTED')).toBe(8);
    expect(seen.get('DECRYPT_FAILED')).toBeGreaterThan(raw.length * 8 - 16);
  });

  it('every truncation fails (decoded bytes, and envelope text)', () => {
    for (let n = 0; n < raw.length; n++) {
      const codes: CryptoErrorCode[] = n < 49 ? ['ENVELOPE_MALFORMED'] : ['DECRYPT_FAILED'];
      expectRefused(() => openWithKey(DEK, textOf(raw.subarray(0, n)), CTX), codes, `truncated to ${n} bytes`);
    }
    for (let n = 0; n < text.length; n++) {
      expectRefused(() => openWithKey(DEK, text.slice(0, n), CTX), ['ENVELOPE_MALFORMED', 'DECRYPT_FAILED'], `text cut at ${n}`);
    }
  });

  it('appended bytes fail', () => {
    for (let n = 1; n <= 32; n++) {
      expectRefused(() => openWithKey(DEK, textOf(Buffer.concat([raw, randomBytes(n)])), CTX), ['DECRYPT_FAILED'], `+${n} bytes`);
      expectRefused(() => openWithKey(DEK, textOf(Buffer.concat([raw, Buffer.alloc(n)])), CTX), ['DECRYPT_FAILED'], `+${n} zeros`);
    }
  });

  it('swapped blocks fail: nonce with ciphertext, ciphertext blocks, tag with ciphertext', () => {
    const swap = (a: number, b: number, len: number): Buffer => {
      const out = Buffer.from(raw);
      raw.copy(out, a, b, b + len);
      raw.copy(out, b, a, a + len);
      return out;
    };
    const tagAt = raw.length - 16;
    const variants = {
      'nonce <-> first 12 ciphertext bytes': swap(21, 33, 12),
      'ciphertext block 0 <-> block 1': swap(33, 49, 16),
      'last 16 ciphertext bytes <-> tag': swap(tagAt - 16, tagAt, 16),
      'dek id <-> nonce (first 12 bytes)': swap(5, 21, 12),
    };
    for (const [label, bad] of Object.entries(variants)) {
      expect(bad.equals(raw)).toBe(false);
      expectRefused(() => openWithKey(DEK, textOf(bad), CTX), ['DECRYPT_FAILED'], label);
    }
  });

  it('a header relabelled with another KEK version or DEK id fails to open', () => {
    const { nonce, sealed } = decodeEnvelope(text);
    expectRefused(() => openWithKey(DEK, encodeEnvelope({ ...HEADER, kekVersion: 8 }, nonce, sealed), CTX), ['DECRYPT_FAILED']);
    expectRefused(() => openWithKey(DEK, encodeEnvelope({ ...HEADER, dekId: randomUUID() }, nonce, sealed), CTX), ['DECRYPT_FAILED']);
  });

  it('another DEK fails to open', () => {
    expectRefused(() => openWithKey(randomBytes(32), text, CTX), ['DECRYPT_FAILED']);
  });

  it('a wrong or missing prefix is malformed', () => {
    const body = text.slice(4);
    for (const bad of [body, `gh2.${body}`, `GH1.${body}`, `gh1${body}`, `gh1:${body}`, ` ${text}`, `w1.${body}`, `gh1..${body}`]) {
      expectRefused(() => decodeEnvelope(bad), ['ENVELOPE_MALFORMED'], bad.slice(0, 6));
      expect(isEnvelope(bad)).toBe(false);
    }
  });

  it('non-canonical or invalid base64url is malformed', () => {
    const body = text.slice(4);
    // 83 decoded bytes: the last group has 3 characters, the last of which carries 2 unused
    // bits, so 3 other spellings decode to the same bytes. All must be refused.
    expect(raw.length % 3).toBe(2);
    const twins = [...ALPHABET].map((c) => body.slice(0, -1) + c).filter((t) => t !== body && Buffer.from(t, 'base64url').equals(raw));
    expect(twins).toHaveLength(3);
    const variants = [
      ...twins,
      `${body}==`,
      `${body}=`,
      `${body.slice(0, 10)}\n${body.slice(10)}`,
      `${body.slice(0, 10)} ${body.slice(10)}`,
      body + 'A'.repeat((5 - (body.length % 4)) % 4 || 4), // length % 4 === 1 cannot be base64
      raw.toString('base64'), // the standard alphabet, with padding
      body.replace(/[A-Za-z]/, '+'),
      body.replace(/[A-Za-z]/, '/'),
      body.replace(/[A-Za-z]/, '.'),
      '',
    ];
    for (const variant of variants) {
      expectRefused(() => decodeEnvelope(`gh1.${variant}`), ['ENVELOPE_MALFORMED'], JSON.stringify(variant.slice(-6)));
      expect(isEnvelope(`gh1.${variant}`)).toBe(false);
    }
  });

  it('an unknown format version is reported as such, whatever its length', () => {
    for (const version of [0x00, 0x02, 0x7f, 0x80, 0xff]) {
      const bad = Buffer.from(raw);
      bad[0] = version;
      expectRefused(() => decodeEnvelope(textOf(bad)), ['ENVELOPE_VERSION_UNSUPPORTED']);
      expectRefused(() => decodeEnvelope(textOf(bad.subarray(0, 5))), ['ENVELOPE_VERSION_UNSUPPORTED']);
    }
  });

  it('a KEK version of 0 is malformed', () => {
    const bad = Buffer.from(raw);
    bad.writeUInt32BE(0, 1);
    expectRefused(() => decodeEnvelope(textOf(bad)), ['ENVELOPE_MALFORMED']);
  });

  it('isEnvelope is a syntactic check on any value', () => {
    expect(isEnvelope(text)).toBe(true);
    expect(isEnvelope(textOf(Buffer.concat([raw.subarray(0, 33), randomBytes(16)])))).toBe(true); // well-formed, would not open
    for (const v of [undefined, null, 42, {}, Buffer.from(text), 'gh1.', 'plain text', textOf(raw.subarray(0, 48))]) {
      expect(isEnvelope(v)).toBe(false);
    }
  });
});

describe('context binding (AAD)', () => {
  const text = sealWithKey(DEK, HEADER, CTX, PLAINTEXT);

  it('fails to open with any one field changed, added or removed', () => {
    const variants: SealContext[] = [
      { ...CTX, tenantId: 'tenant-b' },
      { ...CTX, subjectId: 'user-2' },
      { ...CTX, subjectId: undefined },
      { ...CTX, table: 'users2' },
      { ...CTX, column: 'phone' },
      { ...CTX, rowId: 'row-43' },
      { ...CTX, tenantId: 'Tenant-a' },
      { ...CTX, rowId: 'row-42 ' },
    ];
    for (const ctx of variants) expectRefused(() => openWithKey(DEK, text, ctx), ['DECRYPT_FAILED'], JSON.stringify(ctx));
    expect(openWithKey(DEK, text, { ...CTX }).equals(PLAINTEXT)).toBe(true);
  });

  it('a value without subject opens with an absent or empty subject only', () => {
    const { subjectId: _s, ...noSubject } = CTX;
    const sealed = sealWithKey(DEK, HEADER, noSubject, PLAINTEXT);
    expect(openWithKey(DEK, sealed, noSubject).equals(PLAINTEXT)).toBe(true);
    expect(openWithKey(DEK, sealed, { ...noSubject, subjectId: '' }).equals(PLAINTEXT)).toBe(true);
    expectRefused(() => openWithKey(DEK, sealed, CTX), ['DECRYPT_FAILED']);
  });

  it('field boundaries are unambiguous', () => {
    const headerBytes = decodeEnvelope(text).headerBytes;
    const base = { tenantId: 't', subjectId: 's', table: 'ab', column: 'c', rowId: 'r' };
    const pairs: [SealContext, SealContext][] = [
      [base, { ...base, table: 'a', column: 'bc' }],
      [base, { ...base, tenantId: 'ts', subjectId: '' }],
      [base, { ...base, tenantId: '', subjectId: 'ts' }],
      [base, { ...base, column: 'cr', rowId: '' }],
      [base, { ...base, subjectId: 'sab', table: '' }],
      [{ ...base, tenantId: 'a\u0000b' }, { ...base, tenantId: 'a', subjectId: 'b\u0000s' }],
      // Separators alone (fixed zero bytes instead of lengths) would make these two equal.
      [{ ...base, tenantId: 'a\u0000\u0000\u0000\u0000b', subjectId: 'c' }, { ...base, tenantId: 'a', subjectId: 'b\u0000\u0000\u0000\u0000c' }],
    ];
    for (const [a, b] of pairs) {
      expect(envelopeAad(headerBytes, a).equals(envelopeAad(headerBytes, b))).toBe(false);
      const sealed = sealWithKey(DEK, HEADER, a, PLAINTEXT);
      expectRefused(() => openWithKey(DEK, sealed, b), ['DECRYPT_FAILED'], JSON.stringify(b));
    }
  });
});

describe('wrapKey / unwrapKey', () => {
  const kek = randomBytes(32);
  const dek = randomBytes(32);
  const aad = Buffer.from(`dek:${HEADER.dekId}|kek:7`);

  it('round-trips with a w1. prefix and a fresh nonce each time', () => {
    const wrapped = wrapKey(kek, dek, aad);
    expect(wrapped).toMatch(/^w1\.[A-Za-z0-9_-]+$/);
    expect(Buffer.from(wrapped.slice(3), 'base64url')).toHaveLength(12 + 32 + 16);
    expect(unwrapKey(kek, wrapped, aad).equals(dek)).toBe(true);
    expect(wrapKey(kek, dek, aad)).not.toBe(wrapped);
    const pkcs8Sized = randomBytes(48);
    expect(unwrapKey(kek, wrapKey(kek, pkcs8Sized, aad), aad).equals(pkcs8Sized)).toBe(true);
  });

  it('fails with another KEK, another AAD, or any flipped bit', () => {
    const wrapped = wrapKey(kek, dek, aad);
    expectRefused(() => unwrapKey(randomBytes(32), wrapped, aad), ['DECRYPT_FAILED']);
    expectRefused(() => unwrapKey(kek, wrapped, Buffer.from(`dek:${HEADER.dekId}|kek:8`)), ['DECRYPT_FAILED']);
    expectRefused(() => unwrapKey(kek, wrapped, Buffer.alloc(0)), ['DECRYPT_FAILED']);
    const raw = Buffer.from(wrapped.slice(3), 'base64url');
    for (let i = 0; i < raw.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Buffer.from(raw);
        bad[i] = (bad[i] as number) ^ (1 << bit);
        expectRefused(() => unwrapKey(kek, `w1.${bad.toString('base64url')}`, aad), ['DECRYPT_FAILED'], `byte ${i} bit ${bit}`);
      }
    }
    for (let n = 0; n < raw.length; n++) {
      expectRefused(() => unwrapKey(kek, `w1.${raw.subarray(0, n).toString('base64url')}`, aad), ['ENVELOPE_MALFORMED', 'DECRYPT_FAILED']);
    }
    expectRefused(() => unwrapKey(kek, `w1.${Buffer.concat([raw, Buffer.alloc(1)]).toString('base64url')}`, aad), ['DECRYPT_FAILED']);
  });

  it('refuses malformed text as ENVELOPE_MALFORMED', () => {
    const wrapped = wrapKey(kek, dek, aad);
    for (const bad of [wrapped.slice(3), `w2.${wrapped.slice(3)}`, `${wrapped}=`, `${wrapped}A`, 'w1.', `w1.${'A'.repeat(20)}`, `gh1.${wrapped.slice(3)}`]) {
      expectRefused(() => unwrapKey(kek, bad, aad), ['ENVELOPE_MALFORMED'], bad.slice(0, 6));
    }
  });

  it('is domain-separated from envelopes: a wrapped key never opens as an envelope value', () => {
    // Same key, same nonce layout: a w1 payload dressed as an envelope must not authenticate.
    const text = sealWithKey(kek, HEADER, CTX, dek);
    const { nonce, sealed } = decodeEnvelope(text);
    const asWrapped = `w1.${Buffer.concat([nonce, sealed]).toString('base64url')}`;
    const aadOfEnvelope = envelopeAad(decodeEnvelope(text).headerBytes, CTX);
    expectRefused(() => unwrapKey(kek, asWrapped, aadOfEnvelope), ['DECRYPT_FAILED']);
    expect(aeadOpen(kek, nonce, sealed, aadOfEnvelope).equals(dek)).toBe(true);
  });

  it('throws TypeError for a wrong KEK length or an empty key', () => {
    expect(() => wrapKey(randomBytes(16), dek, aad)).toThrow(TypeError);
    expect(() => wrapKey(kek, Buffer.alloc(0), aad)).toThrow(TypeError);
    expect(() => unwrapKey(randomBytes(31), wrapKey(kek, dek, aad), aad)).toThrow(TypeError);
  });
});

describe('property: seal/open round-trip', () => {
  const field = fc.oneof(fc.string(), fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }));
  const context = fc.record(
    { tenantId: field, subjectId: field, table: field, column: field, rowId: field },
    { requiredKeys: ['tenantId', 'table', 'column', 'rowId'] },
  );
  const header = fc.record({ kekVersion: fc.integer({ min: 1, max: 0xffff_ffff }), dekId: fc.uuid() });

  it('any plaintext, context and header round-trip; the text is a valid envelope', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), context, header, (bytes, ctx, hdr) => {
        const plaintext = Buffer.from(bytes);
        const text = sealWithKey(DEK, hdr, ctx, plaintext);
        expect(isEnvelope(text)).toBe(true);
        expect(decodeEnvelope(text).header).toEqual({ kekVersion: hdr.kekVersion, dekId: hdr.dekId.toLowerCase() });
        expect(openWithKey(DEK, text, ctx).equals(plaintext)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('a different context never opens', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 256 }), context, context, (bytes, a, b) => {
        const norm = (c: SealContext): string => JSON.stringify([c.tenantId, c.subjectId ?? '', c.table, c.column, c.rowId]);
        fc.pre(norm(a) !== norm(b));
        const text = sealWithKey(DEK, HEADER, a, Buffer.from(bytes));
        expectRefused(() => openWithKey(DEK, text, b), ['DECRYPT_FAILED']);
      }),
      { numRuns: 300 },
    );
  });
});
