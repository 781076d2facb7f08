/**
 * AUTH-3 revocation is durable: the database holds every revocation and account state, kv only
 * caches it. An embedded node (PGlite + memory kv) restarted on the same data directory has an
 * empty kv; a logged-out, logged-out-everywhere or operator-disabled user's access token must
 * still be refused from the first request, while an untouched token keeps working.
 * Also: the access-token clock tolerance is `auth.accessTokenClockSkewSeconds` (default 5 s).
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { afterAll, describe, expect, it } from 'vitest';
import { startNode, type Node } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { createLogger } from '../../src/server/logger.ts';
import { createTestApp, deliverMailAfterInject } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

const dataDir = mkdtempSync(join(tmpdir(), 'gh-revocation-'));
const masterKeys = `1:${randomBytes(32).toString('base64')}`;
const mail: MailMessage[] = [];
let node: Node | undefined;

async function startOnDataDir(): Promise<Node> {
  const { config } = loadConfig({
    env: {},
    cwd: '/nonexistent-gatehouse-test-dir',
    overrides: { 'storage.dataDir': dataDir, 'keyring.masterKeys': masterKeys, 'rateLimit.enabled': false, 'log.level': 'warn' },
  });
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const mailer = { transport: 'outbox' as const, send: async (m: MailMessage) => void mail.push(m), close: async () => undefined };
  const node = await startNode({ config, logger, mailer });
  // Mail is queued off the request path: deliver it after each injected request.
  deliverMailAfterInject(node.app, [node]);
  return node;
}

afterAll(async () => {
  await node?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

const bearer = (access: string) => ({ authorization: `Bearer ${access}` });

async function expectRefused(app: FastifyInstance, access: string, request: { method?: 'GET' | 'POST'; url: string; payload?: object }): Promise<void> {
  const res = await app.inject({ method: request.method ?? 'GET', url: request.url, headers: bearer(access), ...(request.payload ? { payload: request.payload } : {}) });
  expect(res.statusCode, `${request.method ?? 'GET'} ${request.url}`).toBe(401);
  expect(res.json().error.code).toBe('UNAUTHENTICATED');
}

describe('embedded node restarted on the same data directory (kv emptied)', () => {
  it('attack: replaying a logged-out, a logged-out-everywhere and a disabled user\'s access token after a restart -> 401 UNAUTHENTICATED', async () => {
    node = await startOnDataDir();
    let app = node.app;
    const loggedOut = await signUpUser(app, mail, 'logged-out@example.com');
    const everywhere = await signUpUser(app, mail, 'everywhere@example.com');
    const disabled: SignedInUser = await signUpUser(app, mail, 'disabled@example.com');
    const untouched = await signUpUser(app, mail, 'untouched@example.com');

    // The disabled user owns an org and a workspace: after the restart their token must not create anything in them.
    const org = (await app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Disabled Co' }, headers: disabled.auth })).json().id as string;
    const ws = (await app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'main' }, headers: disabled.auth })).json().id as string;
    expect(ws).toMatch(/^[0-9a-f-]{36}$/);

    const setupCode = await node.identity.accounts.ensureSetupToken();
    expect((await app.inject({ method: 'POST', url: '/v1/setup', payload: { token: setupCode, email: 'operator@example.com', password: TEST_PASSWORD } })).statusCode).toBe(201);
    const operator = (await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'operator@example.com', password: TEST_PASSWORD } })).json().accessToken as string;

    expect((await app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: loggedOut.auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/v1/auth/logout-all', payload: {}, headers: everywhere.auth })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: `/v1/admin/users/${disabled.userId}/disable`, payload: { disabled: true }, headers: bearer(operator) })).statusCode).toBe(200);
    for (const user of [loggedOut, everywhere, disabled]) await expectRefused(app, user.access, { url: '/v1/me' });

    await node.close();
    node = await startOnDataDir();
    app = node.app;

    // The restart itself ends nothing: an untouched session still works (so the refusals below are the revocations').
    expect((await app.inject({ url: '/v1/me', headers: untouched.auth })).statusCode).toBe(200);
    for (const user of [loggedOut, everywhere, disabled]) {
      await expectRefused(app, user.access, { url: '/v1/me' });
      await expectRefused(app, user.access, { method: 'POST', url: '/v1/orgs', payload: { name: 'Back from the dead' } });
    }
    await expectRefused(app, disabled.access, { method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'revived' } });
    await expectRefused(app, disabled.access, { method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'revived' } });
  });
});

describe('access-token clock tolerance (auth.accessTokenClockSkewSeconds)', () => {
  it('attack: replaying an access token after exp -> accepted within the tolerance, 401 UNAUTHENTICATED at tolerance + 1 s', async () => {
    const clock = { t: Date.now() };
    const t = await createTestApp({ now: () => clock.t, overrides: { 'rateLimit.enabled': false, 'auth.accessTokenClockSkewSeconds': 5, 'auth.accessTokenTtlSeconds': 600 } });
    try {
      const user = await signUpUser(t.app, t.mail, 'clock@example.com');
      const exp = JSON.parse(Buffer.from(user.access.split('.')[1] ?? '', 'base64url').toString('utf8')).exp as number;
      clock.t = (exp + 5) * 1000;
      expect((await t.app.inject({ url: '/v1/me', headers: user.auth })).statusCode).toBe(200);
      clock.t = (exp + 6) * 1000;
      const refused = await t.app.inject({ url: '/v1/me', headers: user.auth });
      expect(refused.statusCode).toBe(401);
      expect(refused.json().error.code).toBe('UNAUTHENTICATED');
    } finally {
      await t.close();
    }
  });

  it('the default tolerance is 5 seconds', async () => {
    const { config } = loadConfig({ env: {}, cwd: '/nonexistent-gatehouse-test-dir' });
    expect(config.auth.accessTokenClockSkewSeconds).toBe(5);
  });
});
