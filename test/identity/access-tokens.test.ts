/**
 * Access tokens (AUTH-3): issue/verify round trip and the attacks the verifier must refuse, each
 * with the exact TokenProblem. No database: keys come from generateSigningKey and sign with
 * signEd25519, the way the keyring's signer does; the key set is an in-memory JWKS whose
 * `keys()` calls are counted.
 */
import { createHmac, generateKeyPairSync, randomBytes, sign as nodeSign } from 'node:crypto';
import fc from 'fast-check';
import { importJWK, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import type { Ed25519PublicJwk } from '../../src/crypto/signing.ts';
import { generateSigningKey, signEd25519 } from '../../src/crypto/signing.ts';
import type { AccessClaims, TokenProblem, VerifierOptions } from '../../src/identity/access-tokens.ts';
import { createAccessTokenVerifier, issueAccessToken, TokenError } from '../../src/identity/access-tokens.ts';

const ISSUER = 'https://gatehouse.test';
const AUDIENCE = 'gatehouse-api';
const T0 = 1_750_000_000_000;
const SUBJECT = { sub: 'user-1', sid: 'session-1' };

interface TestKey {
  kid: string;
  jwk: Ed25519PublicJwk;
  signer: { kid: string; sign(data: Buffer): Buffer };
}

function newKey(): TestKey {
  const pair = generateSigningKey();
  return { kid: pair.kid, jwk: pair.publicJwk, signer: { kid: pair.kid, sign: (data) => signEd25519(pair.privatePkcs8, data) } };
}

/** A verifier over a mutable in-memory JWKS and an injected clock. */
function setup(overrides: Partial<VerifierOptions> = {}, initialKeys: TestKey[] = [newKey()]) {
  const clock = { t: T0 };
  const published: Ed25519PublicJwk[] = initialKeys.map((k) => k.jwk);
  const calls = { keys: 0 };
  const verifier = createAccessTokenVerifier({
    issuer: ISSUER,
    audience: AUDIENCE,
    now: () => clock.t,
    keys: async () => {
      calls.keys++;
      return { keys: published.map((k) => ({ ...k })) };
    },
    ...overrides,
  });
  const key = initialKeys[0] as TestKey;
  const issue = (opts: { ttlSeconds?: number; at?: number; signer?: TestKey['signer'] } = {}) =>
    issueAccessToken(opts.signer ?? key.signer, SUBJECT, { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: opts.ttlSeconds ?? 300, now: () => opts.at ?? clock.t });
  return { clock, published, calls, verifier, key, issue };
}

const b64 = (value: unknown): string => Buffer.from(typeof value === 'string' ? value : JSON.stringify(value), 'utf8').toString('base64url');

/** A token assembled by hand, as an attacker would, with whatever header, payload and signature. */
function forge(header: unknown, payload: unknown, signWith: (input: Buffer) => Buffer = () => Buffer.alloc(0)): string {
  const input = `${b64(header)}.${b64(payload)}`;
  return `${input}.${signWith(Buffer.from(input, 'ascii')).toString('base64url')}`;
}

function validPayload(overrides: Record<string, unknown> = {}, at = T0): Record<string, unknown> {
  const iat = Math.floor(at / 1000);
  return { iss: ISSUER, sub: SUBJECT.sub, aud: AUDIENCE, iat, exp: iat + 300, jti: randomBytes(16).toString('base64url'), sid: SUBJECT.sid, ...overrides };
}

const decodePart = (token: string, index: number): Record<string, unknown> =>
  JSON.parse(Buffer.from(token.split('.')[index] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;

async function expectProblem(promise: Promise<unknown>, problem: TokenProblem): Promise<void> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err, `expected ${problem}`).toBeInstanceOf(TokenError);
  expect((err as TokenError).problem).toBe(problem);
}

describe('issue and verify', () => {
  it('round trip: verify returns the issued claims; the header is exactly { alg, typ, kid }', async () => {
    const { verifier, key, issue } = setup();
    const { token, claims } = await issue({ ttlSeconds: 600 });
    expect(decodePart(token, 0)).toStrictEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid });
    expect(Object.keys(decodePart(token, 0))).toEqual(['alg', 'typ', 'kid']);
    expect(claims).toMatchObject({ ...SUBJECT, iss: ISSUER, aud: AUDIENCE, iat: Math.floor(T0 / 1000), exp: Math.floor(T0 / 1000) + 600 });
    expect(decodePart(token, 1)).toStrictEqual({ ...claims });
    expect(await verifier.verify(token)).toStrictEqual<AccessClaims>(claims);
  });

  it('iat is floor(now / 1000); jti is >= 128 random bits of base64url, unique per token', async () => {
    const { issue } = setup();
    const { claims } = await issue({ at: T0 + 999, ttlSeconds: 60 });
    expect(claims.iat).toBe(Math.floor((T0 + 999) / 1000));
    expect(claims.exp).toBe(claims.iat + 60);
    const jtis = new Set<string>();
    for (let i = 0; i < 200; i++) jtis.add((await issue()).claims.jti);
    expect(jtis.size).toBe(200);
    for (const jti of jtis) {
      expect(jti).toMatch(/^[A-Za-z0-9_-]{22,}$/);
      expect(Buffer.from(jti, 'base64url').length).toBeGreaterThanOrEqual(16);
    }
  });

  it('interop: an issued token verifies with jose (importJWK + jwtVerify, EdDSA only, typ at+jwt)', async () => {
    const { key, issue } = setup();
    const { token, claims } = await issue();
    const publicKey = await importJWK(key.jwk, 'EdDSA');
    const { payload, protectedHeader } = await jwtVerify(token, publicKey, {
      algorithms: ['EdDSA'],
      issuer: ISSUER,
      audience: AUDIENCE,
      typ: 'at+jwt',
      currentDate: new Date(T0),
    });
    expect(protectedHeader).toEqual({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid });
    expect(payload).toEqual({ ...claims });
  });

  it('refuses to issue with bad inputs', async () => {
    const { key } = setup();
    const opts = { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 60 };
    await expect(issueAccessToken(key.signer, { sub: '', sid: 's' }, opts)).rejects.toThrow(TypeError);
    await expect(issueAccessToken(key.signer, SUBJECT, { ...opts, ttlSeconds: 0 })).rejects.toThrow(RangeError);
    await expect(issueAccessToken(key.signer, SUBJECT, { ...opts, ttlSeconds: 1.5 })).rejects.toThrow(RangeError);
    await expect(issueAccessToken(key.signer, SUBJECT, { ...opts, audience: '' })).rejects.toThrow(TypeError);
  });

  it('aud may be an array containing the audience (a token from another issuer of the same shape)', async () => {
    const { verifier, key } = setup();
    const token = forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, validPayload({ aud: ['other-api', AUDIENCE] }), key.signer.sign);
    expect((await verifier.verify(token)).aud).toBe(AUDIENCE);
  });
});

describe('attack: algorithm substitution', () => {
  it('alg "none" (unsigned token, empty signature) -> TOKEN_ALG_NOT_ALLOWED', async () => {
    const { verifier, key } = setup();
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await expectProblem(verifier.verify(forge({ alg, typ: 'at+jwt', kid: key.kid }, validPayload())), 'TOKEN_ALG_NOT_ALLOWED');
    }
  });

  it('HS256 keyed with the public key (raw bytes, JWK x text, JWK JSON): key confusion -> TOKEN_ALG_NOT_ALLOWED', async () => {
    const { verifier, key } = setup();
    const secrets: Array<Buffer | string> = [Buffer.from(key.jwk.x, 'base64url'), key.jwk.x, JSON.stringify(key.jwk)];
    for (const secret of secrets) {
      const hmac = (input: Buffer) => createHmac('sha256', secret).update(input).digest();
      await expectProblem(verifier.verify(forge({ alg: 'HS256', typ: 'at+jwt', kid: key.kid }, validPayload(), hmac)), 'TOKEN_ALG_NOT_ALLOWED');
      // The same HMAC under a header that claims EdDSA fails on the signature.
      await expectProblem(verifier.verify(forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, validPayload(), hmac)), 'TOKEN_SIGNATURE_INVALID');
    }
  });

  it('RS256 with a real RSA signature, ES256, Ed25519, lower-case eddsa, a missing or non-string alg -> TOKEN_ALG_NOT_ALLOWED', async () => {
    const { verifier, key } = setup();
    const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const rs256 = forge({ alg: 'RS256', typ: 'at+jwt', kid: key.kid }, validPayload(), (input) => nodeSign('sha256', input, rsa.privateKey));
    await expectProblem(verifier.verify(rs256), 'TOKEN_ALG_NOT_ALLOWED');
    for (const header of [
      { alg: 'ES256', typ: 'at+jwt', kid: key.kid },
      { alg: 'Ed25519', typ: 'at+jwt', kid: key.kid },
      { alg: 'eddsa', typ: 'at+jwt', kid: key.kid },
      { alg: 'EdDSA ', typ: 'at+jwt', kid: key.kid },
      { alg: ['EdDSA'], typ: 'at+jwt', kid: key.kid },
      { typ: 'at+jwt', kid: key.kid },
    ]) {
      await expectProblem(verifier.verify(forge(header, validPayload(), key.signer.sign)), 'TOKEN_ALG_NOT_ALLOWED');
    }
  });
});

describe('attack: header parameters', () => {
  it('an embedded jwk (the attacker\'s own key, correctly signed) -> TOKEN_MALFORMED', async () => {
    const { verifier, key } = setup();
    const attacker = newKey();
    for (const kid of [attacker.kid, key.kid]) {
      const token = forge({ alg: 'EdDSA', typ: 'at+jwt', kid, jwk: attacker.jwk }, validPayload(), attacker.signer.sign);
      await expectProblem(verifier.verify(token), 'TOKEN_MALFORMED');
    }
  });

  it('jku / x5u / x5c / crit headers -> TOKEN_MALFORMED (nothing is fetched)', async () => {
    const { verifier, key, calls } = setup();
    const extras: Record<string, unknown>[] = [
      { jku: 'https://attacker.example/jwks.json' },
      { x5u: 'https://attacker.example/cert.pem' },
      { x5c: ['MIIB'] },
      { crit: ['exp'] },
      { jku: null },
    ];
    for (const extra of extras) {
      const token = forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid, ...extra }, validPayload(), key.signer.sign);
      await expectProblem(verifier.verify(token), 'TOKEN_MALFORMED');
    }
    expect(calls.keys).toBe(0);
  });

  it('typ missing or other than at+jwt (an ID token, a plain JWT) -> TOKEN_MALFORMED', async () => {
    const { verifier, key } = setup();
    for (const typ of [undefined, 'JWT', 'jwt', 'application/jwt', 'AT+JWT']) {
      const token = forge({ alg: 'EdDSA', typ, kid: key.kid }, validPayload(), key.signer.sign);
      await expectProblem(verifier.verify(token), 'TOKEN_MALFORMED');
    }
  });
});

describe('attack: keys', () => {
  it('a random kid, a kid of an unpublished key, a missing or non-string kid -> TOKEN_KID_UNKNOWN', async () => {
    const { verifier } = setup();
    const stranger = newKey();
    await expectProblem(verifier.verify(forge({ alg: 'EdDSA', typ: 'at+jwt', kid: 'no-such-key' }, validPayload(), stranger.signer.sign)), 'TOKEN_KID_UNKNOWN');
    const { token } = await issueAccessToken(stranger.signer, SUBJECT, { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 300, now: () => T0 });
    await expectProblem(verifier.verify(token), 'TOKEN_KID_UNKNOWN');
    for (const kid of [undefined, '', 42, null, [stranger.kid], { kid: stranger.kid }]) {
      await expectProblem(verifier.verify(forge({ alg: 'EdDSA', typ: 'at+jwt', kid }, validPayload(), stranger.signer.sign)), 'TOKEN_KID_UNKNOWN');
    }
  });

  it('signed by a different Ed25519 key but carrying a published kid -> TOKEN_SIGNATURE_INVALID', async () => {
    const { verifier, key } = setup();
    const attacker = newKey();
    const token = forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, validPayload(), attacker.signer.sign);
    await expectProblem(verifier.verify(token), 'TOKEN_SIGNATURE_INVALID');
  });

  it('a key set with a malformed entry or two keys under one kid: those kids are never used', async () => {
    const good = newKey();
    const twin = newKey();
    const { verifier, published, issue } = setup({}, [good]);
    published.push({ ...twin.jwk, x: 'not-a-key' }, { ...newKey().jwk, kid: good.kid });
    await expectProblem(verifier.verify((await issue({ signer: twin.signer })).token), 'TOKEN_KID_UNKNOWN');
    await expectProblem(verifier.verify((await issue()).token), 'TOKEN_KID_UNKNOWN');
  });

  it('an error from keys() propagates as is (not a token problem) and is not cached', async () => {
    const key = newKey();
    let fail = true;
    const verifier = createAccessTokenVerifier({
      issuer: ISSUER,
      audience: AUDIENCE,
      now: () => T0,
      keys: async () => {
        if (fail) throw new Error('database unavailable');
        return { keys: [key.jwk] };
      },
    });
    const { token } = await issueAccessToken(key.signer, SUBJECT, { issuer: ISSUER, audience: AUDIENCE, ttlSeconds: 300, now: () => T0 });
    await expect(verifier.verify(token)).rejects.toThrow('database unavailable');
    fail = false;
    expect((await verifier.verify(token)).sub).toBe(SUBJECT.sub);
  });
});

describe('attack: tampering', () => {
  it('payload modified after signing (sub changed, exp extended, aud added) -> TOKEN_SIGNATURE_INVALID', async () => {
    const { verifier, issue } = setup();
    const { token, claims } = await issue();
    const [h, , s] = token.split('.') as [string, string, string];
    for (const changed of [{ ...claims, sub: 'admin' }, { ...claims, exp: claims.exp + 86_400 }, { ...claims, aud: [AUDIENCE, 'x'] }]) {
      await expectProblem(verifier.verify(`${h}.${b64(changed)}.${s}`), 'TOKEN_SIGNATURE_INVALID');
    }
  });

  it('header re-encoded, signature truncated, flipped or empty -> TOKEN_SIGNATURE_INVALID', async () => {
    const { verifier, key, issue } = setup();
    const { token } = await issue();
    const [h, p, s] = token.split('.') as [string, string, string];
    const sig = Buffer.from(s, 'base64url');
    const flipped = Buffer.from(sig);
    flipped[10] = (flipped[10] ?? 0) ^ 1;
    await expectProblem(verifier.verify(`${b64({ kid: key.kid, alg: 'EdDSA', typ: 'at+jwt' })}.${p}.${s}`), 'TOKEN_SIGNATURE_INVALID');
    await expectProblem(verifier.verify(`${h}.${p}.${sig.subarray(0, 63).toString('base64url')}`), 'TOKEN_SIGNATURE_INVALID');
    await expectProblem(verifier.verify(`${h}.${p}.${flipped.toString('base64url')}`), 'TOKEN_SIGNATURE_INVALID');
    await expectProblem(verifier.verify(`${h}.${p}.`), 'TOKEN_SIGNATURE_INVALID');
  });

  it('a signature spelled non-canonically (spare bits of the last character set) -> TOKEN_MALFORMED', async () => {
    const { verifier, issue } = setup();
    const { token } = await issue();
    const last = token.at(-1) as string;
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    // 64 bytes = 86 characters: the last carries 2 bits; its 4 low bits must be zero.
    const sibling = alphabet[(alphabet.indexOf(last) & ~0xf) | ((alphabet.indexOf(last) + 1) & 0xf)] as string;
    const respelled = token.slice(0, -1) + sibling;
    expect(Buffer.from(respelled.split('.')[2] ?? '', 'base64url')).toEqual(Buffer.from(token.split('.')[2] ?? '', 'base64url'));
    await expectProblem(verifier.verify(respelled), 'TOKEN_MALFORMED');
    await expectProblem(verifier.verify(`${token}==`), 'TOKEN_MALFORMED');
  });

  it('property: every one-character change to a valid token is refused with a TokenError', async () => {
    const { verifier, issue } = setup();
    const { token } = await issue();
    const chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ';
    await fc.assert(
      fc.asyncProperty(fc.nat({ max: token.length - 1 }), fc.constantFrom(...chars), async (index, ch) => {
        fc.pre(token[index] !== ch);
        const mutated = token.slice(0, index) + ch + token.slice(index + 1);
        await expect(verifier.verify(mutated)).rejects.toBeInstanceOf(TokenError);
      }),
      { numRuns: 300 },
    );
  });
});

describe('attack: time', () => {
  it('attack: replaying a token just after exp -> TOKEN_EXPIRED past the default 5 s tolerance; within it accepted', async () => {
    const { verifier, clock, issue } = setup();
    const { token } = await issue({ ttlSeconds: 300 });
    clock.t = T0 + (300 + 5) * 1000;
    expect((await verifier.verify(token)).sub).toBe(SUBJECT.sub);
    clock.t = T0 + (300 + 5) * 1000 + 1;
    await expectProblem(verifier.verify(token), 'TOKEN_EXPIRED');
    // The 30 s the verifier used to allow is far outside it.
    clock.t = T0 + (300 + 6) * 1000;
    await expectProblem(verifier.verify(token), 'TOKEN_EXPIRED');
    clock.t = T0 + 10 * 86_400_000;
    await expectProblem(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('a configured tolerance: accepted up to exp + tolerance, TOKEN_EXPIRED at tolerance + 1 s', async () => {
    const { verifier, clock, issue } = setup({ clockSkewSeconds: 12 });
    const { token, claims } = await issue({ ttlSeconds: 60 });
    clock.t = (claims.exp + 12) * 1000;
    await verifier.verify(token);
    clock.t = (claims.exp + 13) * 1000;
    await expectProblem(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('clockSkewSeconds 0: expired one millisecond after exp', async () => {
    const { verifier, clock, issue } = setup({ clockSkewSeconds: 0 });
    const { token, claims } = await issue({ ttlSeconds: 60 });
    clock.t = claims.exp * 1000;
    await verifier.verify(token);
    clock.t = claims.exp * 1000 + 1;
    await expectProblem(verifier.verify(token), 'TOKEN_EXPIRED');
  });

  it('future nbf / future iat beyond the skew -> TOKEN_NOT_YET_VALID; within the skew accepted', async () => {
    const { verifier, key, issue } = setup();
    const nowS = Math.floor(T0 / 1000);
    const signed = (payload: Record<string, unknown>) => forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, payload, key.signer.sign);
    await expectProblem(verifier.verify(signed(validPayload({ nbf: nowS + 6 }))), 'TOKEN_NOT_YET_VALID');
    expect((await verifier.verify(signed(validPayload({ nbf: nowS + 5 })))).nbf).toBe(nowS + 5);
    await expectProblem(verifier.verify((await issue({ at: T0 + 6_000 })).token), 'TOKEN_NOT_YET_VALID');
    await verifier.verify((await issue({ at: T0 + 5_000 })).token);
  });
});

describe('attack: claims', () => {
  it('wrong iss / wrong aud -> TOKEN_CLAIMS_INVALID', async () => {
    const { key, published, issue } = setup();
    const { token } = await issue();
    const keys = async () => ({ keys: published });
    const other = (o: Partial<VerifierOptions>) => createAccessTokenVerifier({ issuer: ISSUER, audience: AUDIENCE, keys, now: () => T0, ...o });
    await expectProblem(other({ issuer: 'https://other.test' }).verify(token), 'TOKEN_CLAIMS_INVALID');
    await expectProblem(other({ issuer: `${ISSUER}/` }).verify(token), 'TOKEN_CLAIMS_INVALID');
    await expectProblem(other({ audience: 'billing-api' }).verify(token), 'TOKEN_CLAIMS_INVALID');
    const signed = (payload: Record<string, unknown>) => forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, payload, key.signer.sign);
    await expectProblem(other({}).verify(signed(validPayload({ aud: ['billing-api'] }))), 'TOKEN_CLAIMS_INVALID');
    await expectProblem(other({}).verify(signed(validPayload({ aud: [[AUDIENCE]] }))), 'TOKEN_CLAIMS_INVALID');
    await expectProblem(other({}).verify(signed(validPayload({ iss: [ISSUER] }))), 'TOKEN_CLAIMS_INVALID');
  });

  it('missing or empty sub/sid/jti, non-numeric iat/exp/nbf -> TOKEN_CLAIMS_INVALID', async () => {
    const { verifier, key } = setup();
    const signed = (payload: Record<string, unknown>) => forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, payload, key.signer.sign);
    const bad: Record<string, unknown>[] = [
      { sub: undefined },
      { sub: '' },
      { sub: 7 },
      { sid: undefined },
      { sid: '' },
      { jti: undefined },
      { jti: ['x'] },
      { iat: undefined },
      { iat: '1750000000' },
      { exp: undefined },
      { exp: '9999999999' },
      { exp: null },
      { nbf: '0' },
      { nbf: null },
    ];
    for (const overrides of bad) await expectProblem(verifier.verify(signed(validPayload(overrides))), 'TOKEN_CLAIMS_INVALID');
  });
});

describe('attack: malformed input', () => {
  it('an oversized token (valid signature) -> TOKEN_MALFORMED, without touching the key set', async () => {
    const { verifier, key, calls } = setup();
    const big = forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, validPayload({ pad: 'x'.repeat(4096) }), key.signer.sign);
    await expectProblem(verifier.verify(big), 'TOKEN_MALFORMED');
    await expectProblem(verifier.verify('a'.repeat(10_000_000)), 'TOKEN_MALFORMED');
    expect(calls.keys).toBe(0);
    const small = setup({ maxTokenBytes: 64 }, [key]);
    await expectProblem(small.verifier.verify((await small.issue()).token), 'TOKEN_MALFORMED');
  });

  it('garbage strings and non-objects -> TOKEN_MALFORMED', async () => {
    const { verifier, key } = setup();
    const sig = 'A'.repeat(86);
    const garbage = [
      '',
      '.',
      '..',
      'abc',
      'a.b',
      'a.b.c.d',
      'Bearer x.y.z',
      'not a token at all',
      '€.€.€',
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })}..${sig}`,
      `.${b64(validPayload())}.${sig}`,
      `${b64('null')}.${b64(validPayload())}.${sig}`,
      `${b64('[]')}.${b64(validPayload())}.${sig}`,
      `${b64('"EdDSA"')}.${b64(validPayload())}.${sig}`,
      `${b64('{"alg":"EdDSA"')}.${b64(validPayload())}.${sig}`,
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })}.${b64('42')}.${sig}`,
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })}.${b64('[1]')}.${sig}`,
      `${Buffer.from([0x7b, 0xff, 0x7d]).toString('base64url')}.${b64(validPayload())}.${sig}`,
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })}=.${b64(validPayload())}.${sig}`,
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }).replace(/_/g, '/')}+.${b64(validPayload())}.${sig}`,
      `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })} .${b64(validPayload())}.${sig}`,
    ];
    for (const token of garbage) await expectProblem(verifier.verify(token), 'TOKEN_MALFORMED');
    for (const notString of [null, undefined, 42, {}, ['a', 'b', 'c']]) {
      await expectProblem(verifier.verify(notString as unknown as string), 'TOKEN_MALFORMED');
    }
  });

  it('property: arbitrary strings never verify and never throw anything but TokenError', async () => {
    const { verifier, key } = setup();
    const segment = fc.oneof(fc.base64String(), fc.string({ unit: 'binary-ascii' }), fc.constant(b64({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid })));
    const input = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string({ unit: 'grapheme', maxLength: 5000 }),
      fc.tuple(segment, segment, segment).map((parts) => parts.join('.')),
      fc.tuple(fc.json(), fc.json(), fc.base64String()).map(([h, p, s]) => `${b64(h)}.${b64(p)}.${s}`),
    );
    await fc.assert(
      fc.asyncProperty(input, async (token) => {
        await expect(verifier.verify(token)).rejects.toBeInstanceOf(TokenError);
      }),
      { numRuns: 500 },
    );
  });
});

describe('key rotation and the key cache', () => {
  it('a token of the previous (still published) key verifies; once unpublished and the cache expires, TOKEN_KID_UNKNOWN', async () => {
    const previous = newKey();
    const current = newKey();
    const { verifier, clock, published, calls, issue } = setup({ keyCacheMs: 10_000 }, [previous, current]);
    const oldToken = (await issue({ signer: previous.signer })).token;
    const newToken = (await issue({ signer: current.signer })).token;
    await verifier.verify(oldToken);
    await verifier.verify(newToken);
    expect(calls.keys).toBe(1);

    published.splice(0, 1); // the following rotation retires `previous`
    clock.t += 9_999;
    await verifier.verify(oldToken); // the cached set still has it, until keyCacheMs
    expect(calls.keys).toBe(1);
    clock.t += 1;
    await expectProblem(verifier.verify(oldToken), 'TOKEN_KID_UNKNOWN');
    await verifier.verify(newToken);
  });

  it('a newly published key is picked up at once through the unknown-kid refresh', async () => {
    const { verifier, clock, published, calls, issue } = setup();
    await verifier.verify((await issue()).token);
    const next = newKey();
    published.push(next.jwk);
    clock.t += 1_000;
    await verifier.verify((await issue({ signer: next.signer })).token);
    expect(calls.keys).toBe(2);
  });

  it('the unknown-kid refresh is rate-limited: random kids cost at most ~1 keys() call per second', async () => {
    const { verifier, clock, calls, key } = setup();
    const bombard = async (count: number, stepMs: number) => {
      for (let i = 0; i < count; i++) {
        const token = forge({ alg: 'EdDSA', typ: 'at+jwt', kid: randomBytes(32).toString('base64url') }, validPayload({}, clock.t), key.signer.sign);
        await expectProblem(verifier.verify(token), 'TOKEN_KID_UNKNOWN');
        clock.t += stepMs;
      }
    };
    await bombard(1000, 0); // one instant: the first fetch only
    expect(calls.keys).toBe(1);
    clock.t += 1_000;
    await bombard(1000, 10); // 10 s of injected time
    expect(calls.keys).toBeGreaterThanOrEqual(10);
    expect(calls.keys).toBeLessThanOrEqual(1 + 11);
  });

  it('concurrent unknown kids share one refresh', async () => {
    const { verifier, clock, calls, key } = setup();
    await verifier.verify(forge({ alg: 'EdDSA', typ: 'at+jwt', kid: key.kid }, validPayload(), key.signer.sign));
    clock.t += 5_000;
    const tokens = Array.from({ length: 500 }, () => forge({ alg: 'EdDSA', typ: 'at+jwt', kid: randomBytes(8).toString('hex') }, validPayload({}, clock.t), key.signer.sign));
    const results = await Promise.allSettled(tokens.map((t) => verifier.verify(t)));
    expect(results.every((r) => r.status === 'rejected' && (r.reason as TokenError).problem === 'TOKEN_KID_UNKNOWN')).toBe(true);
    expect(calls.keys).toBe(2);
  });
});
