/**
 * A node whose KEKs live in a PKCS#11 token (DATA-1), end to end against a SoftHSM2 token made for
 * this run: the first start makes KEK v1 in the empty token and seals through it; a start refuses,
 * clearly, when the token is not there or the PIN is wrong; while running, the token vanishing
 * lets cached data keys serve for `keyring.cacheTtlSeconds`, then requests that need a data key
 * answer 503 with Retry-After and readiness fails naming the HSM; all well again when it returns.
 * Never a fallback to a local key (none is configured).
 */
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { SOFTHSM_MODULE, softhsmSkipReason, startSoftHsm, type SoftHsm } from '../support/softhsm.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

describe.skipIf(softhsmSkipReason !== undefined)(`a node with its KEKs in a PKCS#11 token${softhsmSkipReason ? `: ${softhsmSkipReason}` : ''}`, () => {
  let hsm: SoftHsm;
  let token: { label: string; pin: string };
  let other: { label: string; pin: string };
  let t: TestApp | undefined;
  let clock = Date.now();
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  const overrides = (tokenLabel: string, pin: string): Record<string, unknown> => ({
    'keyring.masterKeys': undefined,
    'keyring.pkcs11.module': SOFTHSM_MODULE,
    'keyring.pkcs11.tokenLabel': tokenLabel,
    'keyring.pkcs11.pin': pin,
    'keyring.cacheTtlSeconds': 60,
    'gateway.upstream.allowedHosts': ['api.example.com'],
  });

  beforeAll(async () => {
    hsm = await startSoftHsm();
    token = hsm.initToken('gh-node');
    // SoftHSM lists the tokens there are when the module initializes: make them all first.
    other = hsm.initToken('gh-other');
  });
  afterAll(async () => {
    await t?.close();
    await hsm?.cleanup();
  });

  it('the PIN comes from a file (GATEHOUSE_KEYRING_PKCS11_PIN_FILE); the first start makes KEK v1 in the token; seals and opens through it; readiness reports the keys', async () => {
    const pinFile = join(hsm.dir, 'pin');
    await writeFile(pinFile, token.pin, { mode: 0o600 });
    const { 'keyring.pkcs11.pin': _pin, ...rest } = overrides(token.label, token.pin);
    t = await createTestApp({ now: () => clock, overrides: rest, env: { GATEHOUSE_KEYRING_PKCS11_PIN_FILE: pinFile } });
    owner = await signUpUser(t.app, t.mail, 'hsm-owner@example.com');
    ({ org, ws } = await createOrgAndWorkspace(t, owner, 'HSM'));
    const put = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/own`, payload: { kind: 'openai', baseUrl: 'https://api.example.com', apiKey: 'vendor-key-1', models: ['m'] }, headers: owner.auth });
    expectStatus(put, 200);
    const status = await t.node.keyring.status();
    expect(status.keks).toEqual([expect.objectContaining({ version: 1, primary: true, location: `pkcs11 token "${token.label}" key "gatehouse-kek.v1"` })]);
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { keys: 'ok' } });
  });

  it('the token vanishing: cached data keys serve, then 503 with Retry-After and readiness names the HSM; back when it returns', async () => {
    if (!t) throw new Error('the node did not start');
    const put = (n: number) =>
      t!.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/own`, payload: { kind: 'openai', baseUrl: 'https://api.example.com', apiKey: `vendor-key-${n}`, models: ['m'] }, headers: owner.auth });
    await rename(hsm.tokenDir, `${hsm.tokenDir}.away`);
    try {
      expect((await put(2)).statusCode).toBe(200);
      clock += 61_000;
      const refused = await put(3);
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error.code).toBe('SERVICE_UNAVAILABLE');
      expect(refused.headers['retry-after']).toBeDefined();
      const ready = await t.app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not_ready', checks: { keys: 'unavailable' }, unavailable: ['hsm'] });
    } finally {
      await rename(`${hsm.tokenDir}.away`, hsm.tokenDir);
    }
    expect((await put(4)).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('refuses to start when the token is not there or the PIN is wrong, saying so', async () => {
    const startWith = (o: Record<string, unknown>) =>
      createTestApp({ overrides: o }).then(
        async (app) => {
          await app.close();
          return 'started';
        },
        (err: unknown) => String((err as Error).message),
      );
    expect(await startWith(overrides('no-such-token', '1234'))).toMatch(/refusing to start: no PKCS#11 token "no-such-token" is present in .*Check keyring.pkcs11/);
    expect(await startWith(overrides(other.label, 'wrong-pin'))).toMatch(/refusing to start: the PKCS#11 token "gh-other-[0-9a-f]+" refused this node's PIN \(CKR_PIN_INCORRECT\)/);
  });
});
