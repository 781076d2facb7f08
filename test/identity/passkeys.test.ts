/**
 * Passkeys through the HTTP API (AUTH-7, issue 8 item 3), with a software authenticator written
 * here: ES256 keys from node:crypto, 'none' attestation encoded with CBOR, authenticator data
 * built byte by byte, so each attack can forge exactly one thing (the origin, the RP id hash, the
 * challenge, the counter). Every refusal is asserted with its status and code, and that nothing
 * was stored (no passkey, no session, no counter moved).
 *
 * It runs on PGlite with one node, and, when DATABASE_URL and REDIS_URL are set (always in CI),
 * on two nodes sharing PostgreSQL and Redis, where every ceremony is started on node A and
 * finished on node B (challenges live in the kv).
 */
import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { encodeCBOR, type CBORType } from '@levischuck/tiny-cbor';
import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { createTestApp } from '../support/app.ts';
import { startTwoNodes, twoNodeSkipReason } from '../support/two-nodes.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

const ORIGIN = 'https://gatehouse.test';
const RP_ID = 'gatehouse.test';
const OVERRIDES = { 'rateLimit.enabled': false, 'server.publicUrl': ORIGIN };

const b64u = (b: Uint8Array | Buffer): string => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | Buffer | string): Buffer => createHash('sha256').update(b).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

interface CeremonyTweaks {
  origin?: string;
  rpId?: string;
  /** Signs this challenge instead of the one in the options. */
  challenge?: string;
  type?: string;
  /** The signature counter to report (default: the next one). */
  counter?: number;
  flags?: number;
}

/** A CTAP2-like authenticator in software: one ES256 credential, discoverable, counting signatures. */
class SoftAuthenticator {
  readonly credentialId = randomBytes(16);
  readonly privateKey: KeyObject;
  private readonly x: Buffer;
  private readonly y: Buffer;
  counter = 0;
  userHandle: string | undefined;

  constructor() {
    const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.privateKey = pair.privateKey;
    const jwk = pair.publicKey.export({ format: 'jwk' });
    this.x = Buffer.from(jwk.x ?? '', 'base64url');
    this.y = Buffer.from(jwk.y ?? '', 'base64url');
  }

  get id(): string {
    return b64u(this.credentialId);
  }

  private authData(rpId: string, flags: number, counter: number, attested: boolean): Buffer {
    const head = Buffer.alloc(37);
    sha256(rpId).copy(head, 0);
    head.writeUInt8(flags | (attested ? FLAG_AT : 0), 32);
    head.writeUInt32BE(counter, 33);
    if (!attested) return head;
    // COSE_Key of an EC2 P-256 key for ES256.
    const cose = encodeCBOR(
      new Map<number, CBORType>([
        [1, 2],
        [3, -7],
        [-1, 1],
        [-2, new Uint8Array(this.x)],
        [-3, new Uint8Array(this.y)],
      ]),
    );
    const idLength = Buffer.alloc(2);
    idLength.writeUInt16BE(this.credentialId.length);
    return Buffer.concat([head, Buffer.alloc(16) /* aaguid */, idLength, this.credentialId, Buffer.from(cose)]);
  }

  private clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }));
  }

  /** navigator.credentials.create() with 'none' attestation, as JSON. */
  create(options: { challenge: string; user: { id: string }; rp: { id: string } }, tweaks: CeremonyTweaks = {}) {
    this.userHandle = options.user.id;
    const clientDataJSON = this.clientData(tweaks.type ?? 'webauthn.create', tweaks.challenge ?? options.challenge, tweaks.origin ?? ORIGIN);
    const authData = this.authData(tweaks.rpId ?? options.rp.id, tweaks.flags ?? FLAG_UP | FLAG_UV, 0, true);
    const attestationObject = encodeCBOR(
      new Map<string, CBORType>([
        ['fmt', 'none'],
        ['attStmt', new Map()],
        ['authData', new Uint8Array(authData)],
      ]),
    );
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      clientExtensionResults: {},
      response: { clientDataJSON: b64u(clientDataJSON), attestationObject: b64u(attestationObject), transports: ['internal'] },
    };
  }

  /** navigator.credentials.get(), as JSON: signs authenticatorData || SHA-256(clientDataJSON). */
  get(options: { challenge: string; rpId?: string }, tweaks: CeremonyTweaks = {}) {
    const counter = tweaks.counter ?? this.counter + 1;
    this.counter = Math.max(this.counter, counter);
    const clientDataJSON = this.clientData(tweaks.type ?? 'webauthn.get', tweaks.challenge ?? options.challenge, tweaks.origin ?? ORIGIN);
    const authData = this.authData(tweaks.rpId ?? options.rpId ?? RP_ID, tweaks.flags ?? FLAG_UP | FLAG_UV, counter, false);
    const signature = sign('sha256', Buffer.concat([authData, sha256(clientDataJSON)]), this.privateKey);
    return {
      id: this.id,
      rawId: this.id,
      type: 'public-key' as const,
      clientExtensionResults: {},
      response: {
        clientDataJSON: b64u(clientDataJSON),
        authenticatorData: b64u(authData),
        signature: b64u(signature),
        ...(this.userHandle ? { userHandle: this.userHandle } : {}),
      },
    };
  }
}

interface Harness {
  /** Where ceremonies start. */
  a: FastifyInstance;
  /** Where they finish (the same node on PGlite). */
  b: FastifyInstance;
  node: Node;
  mail: MailMessage[];
  close: () => Promise<void>;
}

function expectRefusal(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json().error?.code }).toEqual({ status, code });
}

let ipCounter = 0;
const freshIp = (): string => `203.0.113.${(ipCounter++ % 250) + 1}`;

function passkeySuite(name: string, skip: string | undefined, start: () => Promise<Harness>): void {
  (skip ? describe.skip : describe)(`${name}${skip ? `: ${skip}` : ''}`, () => {
    let h: Harness;
    let n = 0;

    beforeAll(async () => {
      h = await start();
    });
    afterAll(async () => h?.close());

    const auth = (u: { access: string }) => ({ authorization: `Bearer ${u.access}` });
    const newUser = async (): Promise<SignedInUser> => signUpUser(h.a, h.mail, `pk${++n}-${randomBytes(3).toString('hex')}@example.com`);

    async function passkeyRows(userId: string): Promise<{ id: string; sign_counter: string | number; last_used_at: unknown }[]> {
      return (await h.node.db.query<{ id: string; sign_counter: string | number; last_used_at: unknown }>('select id, sign_counter, last_used_at from passkeys where user_id = $1', [userId])).rows;
    }
    async function sessionCount(userId: string): Promise<number> {
      return Number((await h.node.db.query<{ n: number }>('select count(*)::int as n from sessions where user_id = $1', [userId])).rows[0]?.n);
    }
    async function events(userId: string): Promise<{ action: string; data: Record<string, unknown> }[]> {
      const r = await h.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_events where tenant_id = $1 order by seq', [PLATFORM_TENANT_ID]));
      return r.rows
        .map((row) => JSON.parse(row.body) as { action: string; target: { id: string } | null; data: Record<string, unknown> })
        .filter((e) => e.target?.id === userId)
        .map((e) => ({ action: e.action, data: e.data }));
    }

    async function registrationOptions(u: SignedInUser) {
      const res = await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: auth(u), payload: {} });
      expect(res.statusCode).toBe(200);
      return res.json();
    }
    async function finishRegistration(u: SignedInUser, response: unknown, name = 'Laptop') {
      return h.b.inject({ method: 'POST', url: '/v1/me/passkeys', headers: auth(u), payload: { name, response } });
    }
    async function register(u: SignedInUser, authenticator = new SoftAuthenticator()): Promise<{ authenticator: SoftAuthenticator; id: string }> {
      const res = await finishRegistration(u, authenticator.create(await registrationOptions(u)));
      expect(res.statusCode).toBe(201);
      return { authenticator, id: res.json().id };
    }
    async function passwordlessOptions() {
      const res = await h.a.inject({ method: 'POST', url: '/v1/auth/passkey/options', payload: {} });
      expect(res.statusCode).toBe(200);
      return res.json();
    }
    async function passwordless(response: unknown, mode: 'bearer' | 'cookie' = 'bearer') {
      return h.b.inject({ method: 'POST', url: '/v1/auth/passkey/verify', payload: { response, mode }, remoteAddress: freshIp() });
    }
    async function login(email: string) {
      return h.a.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
    }
    async function stepUpWithPasskey(u: SignedInUser, authenticator: SoftAuthenticator) {
      const options = (await h.a.inject({ method: 'POST', url: '/v1/me/mfa/step-up/webauthn/options', headers: auth(u), payload: {} })).json();
      return h.b.inject({ method: 'POST', url: '/v1/me/mfa/step-up', headers: auth(u), payload: { webauthn: authenticator.get(options) } });
    }

    it('registration options: RP id and name from config, a discoverable credential, a random user handle (not the email), existing passkeys excluded', async () => {
      const u = await newUser();
      const options = await registrationOptions(u);
      expect(options.rp).toEqual({ id: RP_ID, name: 'Gatehouse' });
      expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', userVerification: 'preferred' });
      expect(options.challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
      const handle = Buffer.from(options.user.id, 'base64url');
      expect(handle.length).toBe(32);
      expect(handle.toString('utf8')).not.toContain(u.email);
      expect(options.excludeCredentials).toEqual([]);
      const authenticator = new SoftAuthenticator();
      expect((await finishRegistration(u, authenticator.create(options))).statusCode).toBe(201);
      // The user has a second factor now: more passkeys need a step-up first.
      expectRefusal(await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: auth(u), payload: {} }), 403, 'MFA_STEP_UP_REQUIRED');
      expect((await stepUpWithPasskey(u, authenticator)).statusCode).toBe(200);
      const again = await registrationOptions(u);
      expect(again.user.id).toBe(authenticator.userHandle);
      expect(again.excludeCredentials).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['internal'] }]);
    });

    it('adds named passkeys, lists, renames; the owner is mailed and the event audited', async () => {
      const u = await newUser();
      const first = await register(u);
      // A second passkey needs a fresh second factor now that the user has one: step up with the first.
      expect((await stepUpWithPasskey(u, first.authenticator)).json()).toEqual({ ok: true, method: 'webauthn' });
      const second = await register(u);
      const list = (await h.a.inject({ url: '/v1/me/passkeys', headers: auth(u) })).json().passkeys;
      expect(list.map((p: { id: string }) => p.id)).toEqual([first.id, second.id]);
      expect(list[0]).toMatchObject({ name: 'Laptop', transports: ['internal'], deviceType: 'singleDevice', backedUp: false, lastUsedAt: expect.any(String) });
      expect((await h.a.inject({ url: '/v1/me', headers: auth(u) })).json().mfa).toEqual({ totp: false, totpFactorId: null, passkeys: 2, recoveryCodesLeft: 0 });
      const renamed = await h.a.inject({ method: 'PATCH', url: `/v1/me/passkeys/${second.id}`, headers: auth(u), payload: { name: 'Phone' } });
      expect(renamed.json()).toMatchObject({ id: second.id, name: 'Phone' });
      const exported = (await h.a.inject({ url: '/v1/me/export', headers: auth(u) })).json();
      expect(exported.passkeys.map((p: { id: string; name: string }) => [p.id, p.name])).toEqual([
        [first.id, 'Laptop'],
        [second.id, 'Phone'],
      ]);
      expect(h.mail.filter((m) => m.to === u.email && m.subject === 'A passkey was added')).toHaveLength(2);
      const actions = (await events(u.userId)).map((e) => e.action);
      expect(actions.filter((a) => a === 'passkey.added')).toHaveLength(2);
      expect(actions).toContain('passkey.renamed');
    });

    it('a user with only a passkey gets the second step at password sign-in, and the passkey completes it', async () => {
      const u = await newUser();
      const { authenticator, id } = await register(u);
      const first = await login(u.email);
      expect(first.json()).toMatchObject({ mfaRequired: true, methods: ['webauthn'] });
      const mfaToken = first.json().mfaToken as string;
      const options = (await h.a.inject({ method: 'POST', url: '/v1/auth/mfa/webauthn/options', payload: { mfaToken } })).json();
      expect(options.allowCredentials).toEqual([{ id: authenticator.id, type: 'public-key', transports: ['internal'] }]);
      expect(options.rpId).toBe(RP_ID);
      const done = await h.b.inject({ method: 'POST', url: '/v1/auth/mfa/verify', payload: { mfaToken, webauthn: authenticator.get(options) } });
      expect(done.statusCode).toBe(200);
      expect(done.json()).toMatchObject({ tokenType: 'Bearer', accessToken: expect.any(String) });
      expect(Number((await passkeyRows(u.userId)).find((p) => p.id === id)?.sign_counter)).toBe(1);
      expect((await events(u.userId)).filter((e) => e.action === 'mfa.verified').at(-1)?.data).toMatchObject({ purpose: 'sign-in', method: 'webauthn' });
    });

    it('passwordless sign-in with a discoverable passkey (no email, empty allowCredentials) signs in with the second factor done, bearer and cookie', async () => {
      const u = await newUser();
      const { authenticator, id } = await register(u);
      const options = await passwordlessOptions();
      expect(options.allowCredentials).toEqual([]);
      expect(options.userVerification).toBe('required');
      const res = await passwordless(authenticator.get(options));
      expect(res.statusCode).toBe(200);
      const tokens = res.json();
      expect(tokens).toMatchObject({ tokenType: 'Bearer', accessToken: expect.any(String), refreshToken: expect.any(String) });
      expect((await h.a.inject({ url: '/v1/me', headers: { authorization: `Bearer ${tokens.accessToken}` } })).json().id).toBe(u.userId);
      // The passkey was the second factor: a sensitive action needs no further step-up.
      const removed = await h.a.inject({ method: 'DELETE', url: `/v1/me/passkeys/${id}`, headers: { authorization: `Bearer ${tokens.accessToken}` } });
      expect(removed.statusCode).toBe(200);

      const v = await newUser();
      const other = await register(v);
      const cookie = await passwordless(other.authenticator.get(await passwordlessOptions()), 'cookie');
      expect(cookie.statusCode).toBe(200);
      expect(cookie.json()).toEqual({ sessionId: expect.any(String), expiresIn: expect.any(Number), csrfToken: expect.any(String) });
      const names = cookie.cookies.map((c) => c.name);
      expect(names).toEqual(expect.arrayContaining(['__Host-gh_access', '__Host-gh_refresh', '__Host-gh_csrf']));
    });

    it('attack: registration response made for another origin is refused (401 PASSKEY_INVALID) and nothing is stored', async () => {
      const u = await newUser();
      const res = await finishRegistration(u, new SoftAuthenticator().create(await registrationOptions(u), { origin: 'https://evil.example' }));
      expectRefusal(res, 401, 'PASSKEY_INVALID');
      expect(await passkeyRows(u.userId)).toEqual([]);
      expect((await events(u.userId)).map((e) => e.action)).toContain('auth.passkey.failed');
    });

    it('attack: registration with the wrong RP ID hash is refused (401 PASSKEY_INVALID) and nothing is stored', async () => {
      const u = await newUser();
      const res = await finishRegistration(u, new SoftAuthenticator().create(await registrationOptions(u), { rpId: 'evil.example' }));
      expectRefusal(res, 401, 'PASSKEY_INVALID');
      expect(await passkeyRows(u.userId)).toEqual([]);
    });

    it('attack: an assertion made for another origin or with the wrong RP ID hash does not sign in (401 PASSKEY_INVALID), no session, counter unmoved', async () => {
      const u = await newUser();
      const { authenticator } = await register(u);
      const before = await sessionCount(u.userId);
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { origin: 'https://gatehouse.test.evil.example' })), 401, 'PASSKEY_INVALID');
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { rpId: 'evil.example' })), 401, 'PASSKEY_INVALID');
      // A registration ceremony's clientData presented as an assertion.
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { type: 'webauthn.create' })), 401, 'PASSKEY_INVALID');
      expect(await sessionCount(u.userId)).toBe(before);
      expect(Number((await passkeyRows(u.userId))[0]?.sign_counter)).toBe(0);
    });

    it('attack: passwordless sign-in without user verification is refused (401 PASSKEY_INVALID): a passkey alone must be multi-factor', async () => {
      const u = await newUser();
      const { authenticator } = await register(u);
      const before = await sessionCount(u.userId);
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { flags: FLAG_UP })), 401, 'PASSKEY_INVALID');
      expect(await sessionCount(u.userId)).toBe(before);
    });

    it('attack: a replayed registration response (same challenge twice) is refused (401 PASSKEY_CHALLENGE_INVALID); one passkey stored', async () => {
      const u = await newUser();
      const authenticator = new SoftAuthenticator();
      const response = authenticator.create(await registrationOptions(u));
      expect((await finishRegistration(u, response)).statusCode).toBe(201);
      // Stepped up, so only the spent challenge stands in the way.
      expect((await stepUpWithPasskey(u, authenticator)).statusCode).toBe(200);
      expectRefusal(await finishRegistration(u, response, 'Again'), 401, 'PASSKEY_CHALLENGE_INVALID');
      expect(await passkeyRows(u.userId)).toHaveLength(1);
    });

    it('attack: a replayed assertion (same response twice) is refused (401 PASSKEY_CHALLENGE_INVALID); no second session', async () => {
      const u = await newUser();
      const { authenticator } = await register(u);
      const response = authenticator.get(await passwordlessOptions());
      const [first, second] = await Promise.all([passwordless(response), passwordless(response)]);
      expect([first.statusCode, second.statusCode].sort()).toEqual([200, 401]);
      expect([first, second].find((r) => r.statusCode === 401)?.json().error.code).toBe('PASSKEY_CHALLENGE_INVALID');
      const sessions = await sessionCount(u.userId);
      expectRefusal(await passwordless(response), 401, 'PASSKEY_CHALLENGE_INVALID');
      expect(await sessionCount(u.userId)).toBe(sessions);
    });

    it('attack: an assertion answering a challenge of another flow or another user is refused (401 PASSKEY_CHALLENGE_INVALID)', async () => {
      const u = await newUser();
      const { authenticator } = await register(u);
      // A passwordless-sign-in challenge answered at step-up.
      await h.a.inject({ method: 'POST', url: '/v1/me/mfa/step-up/webauthn/options', headers: auth(u), payload: {} });
      const stepUp = await h.b.inject({ method: 'POST', url: '/v1/me/mfa/step-up', headers: auth(u), payload: { webauthn: authenticator.get(await passwordlessOptions()) } });
      expectRefusal(stepUp, 401, 'PASSKEY_CHALLENGE_INVALID');
      // A step-up challenge answered at passwordless sign-in.
      const stepUpOptions = (await h.a.inject({ method: 'POST', url: '/v1/me/mfa/step-up/webauthn/options', headers: auth(u), payload: {} })).json();
      expectRefusal(await passwordless(authenticator.get(stepUpOptions)), 401, 'PASSKEY_CHALLENGE_INVALID');
      // User V's sign-in challenge answered with U's mfaToken (both have passkeys and a pending second step).
      const v = await newUser();
      const vKey = await register(v);
      const uToken = (await login(u.email)).json().mfaToken as string;
      const vToken = (await login(v.email)).json().mfaToken as string;
      await h.a.inject({ method: 'POST', url: '/v1/auth/mfa/webauthn/options', payload: { mfaToken: uToken } });
      const vOptions = (await h.a.inject({ method: 'POST', url: '/v1/auth/mfa/webauthn/options', payload: { mfaToken: vToken } })).json();
      const crossed = await h.b.inject({ method: 'POST', url: '/v1/auth/mfa/verify', payload: { mfaToken: uToken, webauthn: authenticator.get(vOptions) } });
      expectRefusal(crossed, 401, 'PASSKEY_CHALLENGE_INVALID');
      // V's own passkey for U's sign-in: not one of U's passkeys.
      const uOptions = (await h.a.inject({ method: 'POST', url: '/v1/auth/mfa/webauthn/options', payload: { mfaToken: uToken } })).json();
      expectRefusal(await h.b.inject({ method: 'POST', url: '/v1/auth/mfa/verify', payload: { mfaToken: uToken, webauthn: vKey.authenticator.get(uOptions) } }), 401, 'PASSKEY_UNKNOWN');
      // A registration challenge of user W answered by user V's registration (V has a challenge of its own open).
      const w = await newUser();
      const wOptions = await registrationOptions(w);
      const vSession = (await passwordless(vKey.authenticator.get(await passwordlessOptions()))).json();
      const vAuth = { authorization: `Bearer ${vSession.accessToken}` };
      expect((await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: vAuth, payload: {} })).statusCode).toBe(200);
      const forged = new SoftAuthenticator().create(wOptions);
      const wrongUser = await h.b.inject({ method: 'POST', url: '/v1/me/passkeys', headers: vAuth, payload: { name: 'X', response: forged } });
      expectRefusal(wrongUser, 401, 'PASSKEY_CHALLENGE_INVALID');
      expect(await passkeyRows(v.userId)).toHaveLength(1);
      expect(await passkeyRows(w.userId)).toHaveLength(0);
      expect(await passkeyRows(u.userId)).toHaveLength(1);
    });

    it('attack: a cloned authenticator (counter goes back) is refused (401 PASSKEY_CLONE_SUSPECTED), audited, the owner mailed, no session', async () => {
      const u = await newUser();
      const { authenticator, id } = await register(u);
      expect((await passwordless(authenticator.get(await passwordlessOptions(), { counter: 7 }))).statusCode).toBe(200);
      const sessions = await sessionCount(u.userId);
      const clone = await passwordless(authenticator.get(await passwordlessOptions(), { counter: 5 }));
      expectRefusal(clone, 401, 'PASSKEY_CLONE_SUSPECTED');
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { counter: 7 })), 401, 'PASSKEY_CLONE_SUSPECTED');
      expect(await sessionCount(u.userId)).toBe(sessions);
      expect(Number((await passkeyRows(u.userId)).find((p) => p.id === id)?.sign_counter)).toBe(7);
      const warning = (await events(u.userId)).find((e) => e.action === 'auth.passkey.clone_warning');
      expect(warning?.data).toMatchObject({ passkey: id, storedCounter: 7, presentedCounter: 5 });
      expect(h.mail.filter((m) => m.to === u.email && m.subject === 'A passkey may have been copied')).toHaveLength(1);
      // The genuine authenticator, counting on, still works.
      expect((await passwordless(authenticator.get(await passwordlessOptions(), { counter: 8 }))).statusCode).toBe(200);
      // A counter that drops to 0 after counting is a clone signal too (WebAuthn §7.2 step 21: either counter non-zero).
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions(), { counter: 0 })), 401, 'PASSKEY_CLONE_SUSPECTED');
      expect(Number((await passkeyRows(u.userId)).find((p) => p.id === id)?.sign_counter)).toBe(8);
    });

    it('an authenticator that does not count (counter always 0, as synced passkeys) signs in again and again', async () => {
      const u = await newUser();
      const { authenticator, id } = await register(u);
      for (let i = 0; i < 3; i += 1) expect((await passwordless(authenticator.get(await passwordlessOptions(), { counter: 0 }))).statusCode).toBe(200);
      const row = (await passkeyRows(u.userId)).find((p) => p.id === id);
      expect(Number(row?.sign_counter)).toBe(0);
      expect(row?.last_used_at).not.toBeNull();
    });

    it('attack: an unknown credential is refused (401 PASSKEY_UNKNOWN) with a message that names no account', async () => {
      const stranger = new SoftAuthenticator();
      stranger.userHandle = b64u(randomBytes(32));
      const res = await passwordless(stranger.get(await passwordlessOptions()));
      expectRefusal(res, 401, 'PASSKEY_UNKNOWN');
      expect(res.json().error.message).toBe('This passkey is not registered.');
    });

    it('attack: removing a passkey without a step-up in the last 5 minutes is refused (403 MFA_STEP_UP_REQUIRED); with one it is removed, audited and mailed', async () => {
      const u = await newUser();
      const { authenticator, id } = await register(u);
      // This session signed in with the password only, before the passkey existed.
      expectRefusal(await h.a.inject({ method: 'DELETE', url: `/v1/me/passkeys/${id}`, headers: auth(u) }), 403, 'MFA_STEP_UP_REQUIRED');
      expect(await passkeyRows(u.userId)).toHaveLength(1);
      // A step-up older than 5 minutes does not count either.
      expect((await stepUpWithPasskey(u, authenticator)).statusCode).toBe(200);
      await h.node.db.query("update sessions set mfa_at = mfa_at - interval '6 minutes' where user_id = $1", [u.userId]);
      expectRefusal(await h.a.inject({ method: 'DELETE', url: `/v1/me/passkeys/${id}`, headers: auth(u) }), 403, 'MFA_STEP_UP_REQUIRED');
      expect(await passkeyRows(u.userId)).toHaveLength(1);
      expect((await stepUpWithPasskey(u, authenticator)).statusCode).toBe(200);
      expect((await h.b.inject({ method: 'DELETE', url: `/v1/me/passkeys/${id}`, headers: auth(u) })).statusCode).toBe(200);
      expect(await passkeyRows(u.userId)).toEqual([]);
      expect((await events(u.userId)).map((e) => e.action)).toContain('passkey.removed');
      expect(h.mail.some((m) => m.to === u.email && m.subject === 'A passkey was removed')).toBe(true);
      // Gone: it signs in no more, and the password sign-in has no second step.
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions())), 401, 'PASSKEY_UNKNOWN');
      expect((await login(u.email)).json()).toMatchObject({ tokenType: 'Bearer' });
    });

    it('attack: adding a passkey to a stolen session without a recent sign-in is refused (403 PASSKEY_REAUTH_REQUIRED); the password unlocks it', async () => {
      const u = await newUser();
      await h.node.db.query("update sessions set reauth_at = reauth_at - interval '10 minutes' where user_id = $1", [u.userId]);
      expectRefusal(await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: auth(u), payload: {} }), 403, 'PASSKEY_REAUTH_REQUIRED');
      expectRefusal(await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: auth(u), payload: { password: 'not the password at all 1' } }), 401, 'INVALID_CREDENTIALS');
      const options = await h.a.inject({ method: 'POST', url: '/v1/me/passkeys/options', headers: auth(u), payload: { password: TEST_PASSWORD } });
      expect(options.statusCode).toBe(200);
      expect((await finishRegistration(u, new SoftAuthenticator().create(options.json()))).statusCode).toBe(201);
    });

    it('attack: malformed or oversized ceremony bodies are refused with 400 (413 past the body limit) and nothing is stored', async () => {
      const u = await newUser();
      const options = await registrationOptions(u);
      const good = new SoftAuthenticator().create(options);
      const bad: [string, unknown][] = [
        ['missing response', { name: 'X' }],
        ['not an object', { name: 'X', response: 'credential' }],
        ['missing attestationObject', { name: 'X', response: { ...good, response: { clientDataJSON: good.response.clientDataJSON } } }],
        ['not base64url', { name: 'X', response: { ...good, response: { ...good.response, clientDataJSON: 'eyJ0eXBlIjoid2ViYXV0aG4uY3JlYXRlIn0=+/' } } }],
        ['oversized clientDataJSON', { name: 'X', response: { ...good, response: { ...good.response, clientDataJSON: 'A'.repeat(5000) } } }],
        ['unknown field', { name: 'X', response: { ...good, extra: 1 } }],
        ['id differs from rawId', { name: 'X', response: { ...good, rawId: 'AAAA' } }],
        ['wrong type', { name: 'X', response: { ...good, type: 'password' } }],
        ['empty name', { name: ' ', response: good }],
        ['control characters in the name', { name: 'a\u0007b', response: good }],
        ['name too long', { name: 'n'.repeat(65), response: good }],
      ];
      for (const [label, payload] of bad) {
        const res = await h.b.inject({ method: 'POST', url: '/v1/me/passkeys', headers: auth(u), payload: payload as object });
        expect({ label, status: res.statusCode, code: res.json().error?.code }).toEqual({ label, status: 400, code: 'VALIDATION_FAILED' });
      }
      const huge = await h.b.inject({ method: 'POST', url: '/v1/me/passkeys', headers: auth(u), payload: { name: 'X', response: { ...good, clientExtensionResults: { pad: 'x'.repeat(70_000) } } } });
      expectRefusal(huge, 413, 'BODY_TOO_LARGE');
      // Well-formed base64url whose clientDataJSON is not JSON: a clear 401, not a crash.
      expectRefusal(await finishRegistration(u, { ...good, response: { ...good.response, clientDataJSON: b64u(Buffer.from('not json')) } }), 401, 'PASSKEY_INVALID');
      // Garbage attestation (challenge right, CBOR wrong): 401 PASSKEY_INVALID.
      const fresh = new SoftAuthenticator().create(await registrationOptions(u));
      expectRefusal(await finishRegistration(u, { ...fresh, response: { ...fresh.response, attestationObject: b64u(randomBytes(64)) } }), 401, 'PASSKEY_INVALID');
      expect(await passkeyRows(u.userId)).toEqual([]);
      // Assertion bodies: two proofs at once, and a malformed assertion.
      const token = 'ghm_' + 'A'.repeat(43);
      const assertion = new SoftAuthenticator().get({ challenge: b64u(randomBytes(32)) });
      for (const payload of [
        { mfaToken: token, code: '123456', webauthn: assertion },
        { mfaToken: token, webauthn: { ...assertion, response: { ...assertion.response, signature: undefined } } },
      ]) {
        expectRefusal(await h.b.inject({ method: 'POST', url: '/v1/auth/mfa/verify', payload }), 400, 'VALIDATION_FAILED');
      }
      expectRefusal(await h.b.inject({ method: 'POST', url: '/v1/auth/passkey/verify', payload: { response: { ...assertion, response: { ...assertion.response, userHandle: 'x'.repeat(200) } } } }), 400, 'VALIDATION_FAILED');
      expectRefusal(await h.b.inject({ method: 'POST', url: '/v1/auth/passkey/verify', payload: { response: assertion, mode: 'session' } }), 400, 'VALIDATION_FAILED');
    });

    it('a disabled user cannot sign in with a passkey (403 ACCOUNT_DISABLED); a deleted account takes its passkeys with it', async () => {
      const u = await newUser();
      const { authenticator } = await register(u);
      await h.node.db.query("update users set status = 'disabled' where id = $1", [u.userId]);
      const before = await sessionCount(u.userId);
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions())), 403, 'ACCOUNT_DISABLED');
      expect(await sessionCount(u.userId)).toBe(before);
      await h.node.db.query("update users set status = 'active' where id = $1", [u.userId]);

      expect((await stepUpWithPasskey(u, authenticator)).statusCode).toBe(200);
      const deleted = await h.a.inject({ method: 'DELETE', url: '/v1/me', headers: auth(u), payload: { password: TEST_PASSWORD } });
      expect(deleted.statusCode).toBe(200);
      expect(await passkeyRows(u.userId)).toEqual([]);
      expectRefusal(await passwordless(authenticator.get(await passwordlessOptions())), 401, 'PASSKEY_UNKNOWN');
    });

    it('without a passkey: password sign-in has no second step, passkey options of the second step need a live mfaToken, step-up options answer 404', async () => {
      const u = await newUser();
      expect((await login(u.email)).json()).toMatchObject({ tokenType: 'Bearer' });
      expectRefusal(await h.a.inject({ method: 'POST', url: '/v1/auth/mfa/webauthn/options', payload: { mfaToken: 'ghm_' + 'B'.repeat(43) } }), 401, 'MFA_TOKEN_INVALID');
      expectRefusal(await h.a.inject({ method: 'POST', url: '/v1/me/mfa/step-up/webauthn/options', headers: auth(u), payload: {} }), 404, 'PASSKEY_NOT_FOUND');
    });
  });
}

passkeySuite('passkeys on PGlite', undefined, async () => {
  const t = await createTestApp({ overrides: OVERRIDES });
  return { a: t.app, b: t.app, node: t.node, mail: t.mail, close: t.close };
});

passkeySuite('passkeys on two nodes sharing PostgreSQL and Redis (started on A, finished on B)', twoNodeSkipReason, async () => {
  const nodes = await startTwoNodes({ env: { GATEHOUSE_RATE_LIMIT_ENABLED: 'false', GATEHOUSE_SERVER_PUBLIC_URL: ORIGIN } });
  return { a: nodes.a.app, b: nodes.b.app, node: nodes.a, mail: nodes.mail, close: nodes.close };
});
