/**
 * Two Gatehouse nodes sharing PostgreSQL and Redis: a session revoked on one node is refused on
 * the other at once, for an access token that has not expired (AUTH-3), and an operator's
 * disable reaches both. Revocations live in the database: a Redis restarted without persistence
 * (a private redis-server this suite restarts) brings none of them back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { postgresTarget } from '../support/services.ts';
import { privateRedisSkipReason, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';

const PASSWORD = 'two nodes share one passphrase 9';

(skip ? describe.skip : describe)(`two nodes on PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let mail: MailMessage[] = [];

  beforeAll(async () => {
    nodes = await startTwoNodes({ env: { GATEHOUSE_RATE_LIMIT_ENABLED: 'false' } });
    ({ a, b, mail } = nodes);
  });

  afterAll(async () => {
    await nodes?.close();
  });

  async function signIn(email: string): Promise<{ accessToken: string; sessionId: string }> {
    expect((await a.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD } })).statusCode).toBe(202);
    const code = /ghv_[A-Za-z0-9_-]{43}/.exec([...mail].reverse().find((m) => m.to === email)?.text ?? '')?.[0];
    await b.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } });
    const login = await a.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: PASSWORD } });
    expect(login.statusCode).toBe(200);
    return login.json();
  }

  it('a token issued on node A works on node B; logout on B kills it on A at once', async () => {
    const s = await signIn('twonodes@example.com');
    const auth = { authorization: `Bearer ${s.accessToken}` };
    expect((await b.app.inject({ url: '/v1/me', headers: auth })).statusCode).toBe(200);
    expect((await a.app.inject({ url: '/v1/me', headers: auth })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: auth })).statusCode).toBe(200);
    const t0 = Date.now();
    let status = 200;
    while (Date.now() - t0 < 1000 && status === 200) status = (await a.app.inject({ url: '/v1/me', headers: auth })).statusCode;
    expect(status).toBe(401);
  });

  it('logout-all on A ends sessions used on B', async () => {
    const s1 = await signIn('logoutall@example.com');
    const s2 = (await b.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'logoutall@example.com', password: PASSWORD } })).json();
    expect((await a.app.inject({ method: 'POST', url: '/v1/auth/logout-all', payload: {}, headers: { authorization: `Bearer ${s1.accessToken}` } })).statusCode).toBe(200);
    expect((await b.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${s2.accessToken}` } })).statusCode).toBe(401);
  });
  it('removing a member or lowering a role on node A applies on node B within a second (TEN-1 current authority)', async () => {
    const owner = await signIn('org-owner@example.com');
    const member = await signIn('org-member@example.com');
    const ownerAuth = { authorization: `Bearer ${owner.accessToken}` };
    const memberAuth = { authorization: `Bearer ${member.accessToken}` };
    const org = (await a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Two nodes' }, headers: ownerAuth })).json().id as string;
    expect((await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, payload: { email: 'org-member@example.com', role: 'admin' }, headers: ownerAuth })).statusCode).toBe(201);
    const token = /ghi_[A-Za-z0-9_-]{65}/.exec([...mail].reverse().find((m) => m.to === 'org-member@example.com' && m.kind === 'invitation')?.text ?? '')?.[0];
    expect((await b.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token }, headers: memberAuth })).statusCode).toBe(200);
    const me = (await a.app.inject({ url: '/v1/me', headers: memberAuth })).json().id as string;

    // B caches the member as admin.
    expect((await b.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'ok' }, headers: memberAuth })).statusCode).toBe(201);
    expect((await a.app.inject({ method: 'PATCH', url: `/v1/orgs/${org}/members/${me}`, payload: { role: 'viewer' }, headers: ownerAuth })).statusCode).toBe(200);
    const until = async (check: () => Promise<boolean>): Promise<number> => {
      const t0 = Date.now();
      while (Date.now() - t0 < 1000) if (await check()) return Date.now() - t0;
      return Infinity;
    };
    const demoted = await until(async () => (await b.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'no' }, headers: memberAuth })).statusCode === 403);
    expect(demoted).toBeLessThan(1000);

    expect((await b.app.inject({ url: `/v1/orgs/${org}`, headers: memberAuth })).statusCode).toBe(200);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/members/${me}`, headers: ownerAuth })).statusCode).toBe(204);
    const removed = await until(async () => (await b.app.inject({ url: `/v1/orgs/${org}`, headers: memberAuth })).statusCode === 404);
    expect(removed).toBeLessThan(1000);
  });
});

/**
 * AUTH-5 across two nodes: throttles reserve in Redis before the expensive check. The nodes share
 * a frozen clock, so "within the 1 s wait" holds however slowly a loaded machine serves the burst.
 */
(skip ? describe.skip : describe)(`sign-in and sign-up throttles on two nodes${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let mail: MailMessage[] = [];
  const frozen = Date.now();

  beforeAll(async () => {
    nodes = await startTwoNodes({ env: { GATEHOUSE_RATE_LIMIT_ENABLED: 'false' }, now: () => frozen });
    ({ a, b, mail } = nodes);
  });

  afterAll(async () => {
    await nodes?.close();
  });

  async function signIn(email: string): Promise<void> {
    expect((await a.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD }, remoteAddress: '198.18.1.1' })).statusCode).toBe(202);
    const code = /ghv_[A-Za-z0-9_-]{43}/.exec([...mail].reverse().find((m) => m.to === email)?.text ?? '')?.[0];
    await b.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } });
    expect((await a.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: PASSWORD } })).statusCode).toBe(200);
  }

  it('attack: 40 wrong passwords sent at once to both nodes, each from another address, get exactly the 5 free attempts checked (AUTH-5)', async () => {
    await signIn('throttle-two-nodes@example.com');
    const results = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        (i % 2 ? a : b).app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'throttle-two-nodes@example.com', password: `wrong guess ${i} on two nodes` }, remoteAddress: `203.0.113.${i + 1}` }),
      ),
    );
    const outcomes = results.map((r) => `${r.statusCode} ${r.json().error?.code}`);
    expect(outcomes.filter((o) => o === '401 INVALID_CREDENTIALS')).toHaveLength(5);
    expect(outcomes.filter((o) => o === '429 LOGIN_THROTTLED')).toHaveLength(35);
  });

  it('attack: 20 valid sign-ups sent at once to both nodes from one address create exactly 5 accounts (AUTH-5)', async () => {
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        (i % 2 ? a : b).app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: `burst-two-nodes${i}@example.com`, password: PASSWORD }, remoteAddress: '198.18.0.7' }),
      ),
    );
    expect(results.filter((r) => r.statusCode === 202)).toHaveLength(5);
    expect(results.filter((r) => r.statusCode === 429 && r.json().error?.code === 'RATE_LIMITED')).toHaveLength(15);
    const created = await a.db.query("select 1 from users where email like 'burst-two-nodes%'");
    expect(created.rowCount).toBe(5);
  });
});

const lostSkip = postgresTarget().skipReason ?? privateRedisSkipReason;

(lostSkip ? describe.skip : describe)(`two nodes whose Redis loses its memory${lostSkip ? `: ${lostSkip}` : ''}`, () => {
  let redis: PrivateService | undefined;
  let nodes: TwoNodes | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    nodes = await startTwoNodes({ env: { GATEHOUSE_RATE_LIMIT_ENABLED: 'false', REDIS_URL: redis.url } });
  });

  afterAll(async () => {
    await nodes?.close();
    await redis?.close();
  });

  async function signIn(node: Node, email: string): Promise<string> {
    const { a, mail } = nodes as TwoNodes;
    if (!mail.some((m) => m.to === email)) {
      expect((await a.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD } })).statusCode).toBe(202);
      const code = /ghv_[A-Za-z0-9_-]{43}/.exec([...mail].reverse().find((m) => m.to === email)?.text ?? '')?.[0];
      expect((await a.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } })).statusCode).toBe(200);
    }
    const login = await node.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: PASSWORD } });
    expect(login.statusCode).toBe(200);
    return login.json().accessToken as string;
  }

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

  async function expectRefusedEverywhere(token: string): Promise<void> {
    const { a, b } = nodes as TwoNodes;
    for (const node of [a, b]) {
      const me = await node.app.inject({ url: '/v1/me', headers: bearer(token) });
      expect(me.statusCode).toBe(401);
      expect(me.json().error.code).toBe('UNAUTHENTICATED');
      const org = await node.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Revived' }, headers: bearer(token) });
      expect(org.statusCode).toBe(401);
      expect(org.json().error.code).toBe('UNAUTHENTICATED');
    }
  }

  it('attack: replaying tokens revoked by logout, logout-all and an operator\'s disable after Redis restarted empty -> 401 UNAUTHENTICATED on both nodes', async () => {
    const { a, b } = nodes as TwoNodes;
    const everywhereOnA = await signIn(a, 'lost-everywhere@example.com');
    const everywhereOnB = await signIn(b, 'lost-everywhere@example.com');
    const loggedOut = await signIn(b, 'lost-logout@example.com');
    const disabled = await signIn(a, 'lost-disabled@example.com');
    const untouched = await signIn(b, 'lost-untouched@example.com');
    const disabledId = (await b.app.inject({ url: '/v1/me', headers: bearer(disabled) })).json().id as string;
    const setupCode = await a.identity.accounts.ensureSetupToken();
    expect((await a.app.inject({ method: 'POST', url: '/v1/setup', payload: { token: setupCode, email: 'lost-operator@example.com', password: PASSWORD } })).statusCode).toBe(201);
    const operatorLogin = await b.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'lost-operator@example.com', password: PASSWORD } });
    expect(operatorLogin.statusCode).toBe(200);
    const operator = operatorLogin.json().accessToken as string;

    expect((await a.app.inject({ method: 'POST', url: '/v1/auth/logout-all', payload: {}, headers: bearer(everywhereOnA) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'POST', url: '/v1/auth/logout', payload: {}, headers: bearer(loggedOut) })).statusCode).toBe(200);
    expect((await b.app.inject({ method: 'POST', url: `/v1/admin/users/${disabledId}/disable`, payload: { disabled: true }, headers: bearer(operator) })).statusCode).toBe(200);
    for (const token of [everywhereOnA, everywhereOnB, loggedOut, disabled]) await expectRefusedEverywhere(token);
    const loggedOutSid = JSON.parse(Buffer.from(loggedOut.split('.')[1] ?? '', 'base64url').toString('utf8')).sid as string;
    expect(await a.kv.get(`auth:ss:${loggedOutSid}`)).toBe('revoked');

    // Redis restarts without persistence: every cached revocation is gone.
    await redis?.stop();
    await redis?.start();
    for (const node of [a, b]) {
      let up = false;
      for (let attempt = 0; attempt < 100 && !up; attempt++) {
        up = await node.kv.ping().then(() => true, () => false);
        if (!up) await new Promise((r) => setTimeout(r, 100));
      }
      expect(up).toBe(true);
      // The revocation kv held for the logged-out session is really gone.
      expect(await node.kv.get(`auth:ss:${loggedOutSid}`)).toBeNull();
    }

    // The restart itself ends nothing: an untouched session works on both nodes.
    expect((await a.app.inject({ url: '/v1/me', headers: bearer(untouched) })).statusCode).toBe(200);
    expect((await b.app.inject({ url: '/v1/me', headers: bearer(untouched) })).statusCode).toBe(200);
    for (const token of [everywhereOnA, everywhereOnB, loggedOut, disabled]) await expectRefusedEverywhere(token);
  });
});
