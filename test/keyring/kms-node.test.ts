/**
 * A node whose KEKs live in a KMS (DATA-1), end to end against the local server in the KMS's
 * documented shape (test/support/fake-kms.ts): it starts and seals through the KMS; it refuses to
 * start, clearly, when the KMS is unreachable or refuses its credentials; while running, a KMS
 * outage lets cached data keys serve for `keyring.cacheTtlSeconds`, then the requests that need a
 * data key answer 503 with Retry-After and readiness fails naming the KMS; all well again when it
 * answers. Never a fallback to a local key (none is configured).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { arn, CREDS, fakeKms, REGION } from '../support/fake-kms.ts';
import { createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

describe('a node with its KEKs in a KMS', () => {
  const kms = fakeKms();
  let t: TestApp | undefined;
  let clock = Date.now();
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  const kmsOverrides = (endpoint: string, creds = CREDS): Record<string, unknown> => ({
    'keyring.masterKeys': undefined,
    'keyring.kms.keys': { '1': arn(1) },
    'keyring.kms.endpoint': endpoint,
    'keyring.kms.region': REGION,
    'keyring.kms.accessKeyId': creds.accessKeyId,
    'keyring.kms.secretAccessKey': creds.secretAccessKey,
    'keyring.cacheTtlSeconds': 60,
    'gateway.upstream.allowedHosts': ['api.example.com'],
  });

  beforeAll(async () => {
    await kms.listen();
  });
  afterAll(async () => {
    await t?.close();
    await kms.stop();
  });

  it('starts, and seals and opens through the KMS; readiness reports the KMS', async () => {
    t = await createTestApp({ now: () => clock, overrides: kmsOverrides(kms.url()) });
    owner = await signUpUser(t.app, t.mail, 'kms-owner@example.com');
    ({ org, ws } = await createOrgAndWorkspace(t, owner, 'KMS'));
    const put = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/own`, payload: { kind: 'openai', baseUrl: 'https://api.example.com', apiKey: 'vendor-key-1', models: ['m'] }, headers: owner.auth });
    expectStatus(put, 200);
    expect(kms.seen.some((s) => s.target === 'TrentService.GenerateDataKey')).toBe(true);
    const ready = await t.app.inject({ url: '/readyz' });
    expect(ready.json()).toMatchObject({ status: 'ready', checks: { keys: 'ok' } });
  });

  it('a KMS outage: cached data keys serve, then 503 with Retry-After and readiness names the KMS; back when it answers', async () => {
    if (!t) throw new Error('the node did not start');
    const put = (n: number) =>
      t!.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/own`, payload: { kind: 'openai', baseUrl: 'https://api.example.com', apiKey: `vendor-key-${n}`, models: ['m'] }, headers: owner.auth });
    await kms.stop();
    try {
      expect((await put(2)).statusCode).toBe(200);
      clock += 61_000;
      const refused = await put(3);
      expect(refused.statusCode).toBe(503);
      expect(refused.json().error.code).toBe('SERVICE_UNAVAILABLE');
      expect(refused.headers['retry-after']).toBeDefined();
      const ready = await t.app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ status: 'not_ready', checks: { keys: 'unavailable' }, unavailable: ['kms'] });
    } finally {
      await kms.listen();
    }
    expect((await put(4)).statusCode).toBe(200);
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('refuses to start when the KMS is unreachable or refuses its credentials, saying so', async () => {
    const unreachable = await createTestApp({ overrides: kmsOverrides('http://127.0.0.1:9') }).then(
      async (app) => {
        await app.close();
        return 'started';
      },
      (err: unknown) => String((err as Error).message),
    );
    expect(unreachable).toMatch(/refusing to start: the KMS did not answer GenerateDataKey for key-encryption key version 1/);
    const denied = await createTestApp({ overrides: kmsOverrides(kms.url(), { ...CREDS, secretAccessKey: 'wrong' }) }).then(
      async (app) => {
        await app.close();
        return 'started';
      },
      (err: unknown) => String((err as Error).message),
    );
    expect(denied).toMatch(/refusing to start: the KMS refused this node's credentials/);
  });
});
