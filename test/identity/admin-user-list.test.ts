/**
 * AUTH-10, UI-8: the operators' user list (`GET /v1/admin/users`): keyset paging that shows every
 * user once while users are created between pages, email search, no hash or secret in a row, and
 * the refusals (a user who is not an operator, a forged cursor, a limit out of range).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LIST_USERS } from '../../src/identity/accounts-operator.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

let t: TestApp;
let op: SignedInUser;
let member: SignedInUser;

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
  op = await signUpUser(t.app, t.mail, 'list-operator@example.com');
  await t.node.db.query('update users set is_operator = true where id = $1', [op.userId]);
  member = await signUpUser(t.app, t.mail, 'list-member@example.com');
  // 120 more users, the first 40 created in the same instant (the id breaks the tie).
  const same = new Date('2026-12-01T10:00:00.123456Z');
  for (let i = 0; i < 120; i++) {
    await t.node.db.query('insert into users (id, email, password_hash, created_at) values ($1, $2, $3, $4)', [
      randomUUID(),
      `bulk-${String(i).padStart(3, '0')}@example.org`,
      '$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g',
      i < 40 ? same : new Date(same.getTime() + i * 1000),
    ]);
  }
});
afterAll(async () => t.close());

interface Listed {
  users: { id: string; email: string; createdAt: string; disabled: boolean; hasSecondFactor: boolean }[];
  nextCursor: string | null;
}

async function list(query: string, who: SignedInUser = op) {
  return t.app.inject({ url: `/v1/admin/users${query}`, headers: who.auth });
}

describe('operators list the users', () => {
  it('pages over 120+ users: each seen exactly once, in (created_at, id) order, while users are created between pages', async () => {
    const seen: string[] = [];
    const created: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await list(`?limit=25${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(res.statusCode).toBe(200);
      const body = res.json<Listed>();
      expect(body.users.length).toBeLessThanOrEqual(25);
      seen.push(...body.users.map((u) => u.id));
      cursor = body.nextCursor;
      pages++;
      // A user signing up mid-listing sorts last: no page shifts, nobody is shown twice.
      if (pages <= 3) {
        const id = randomUUID();
        created.push(id);
        await t.node.db.query('insert into users (id, email) values ($1, $2)', [id, `late-${pages}@example.org`]);
      }
    } while (cursor);
    const all = (await t.node.db.query<{ id: string }>("select id from users where status <> 'deleted' order by created_at, id")).rows.map((r) => r.id);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen).toEqual(all);
    expect(seen).toEqual(expect.arrayContaining(created));
    expect(seen.length).toBeGreaterThanOrEqual(125);
    expect(pages).toBeGreaterThanOrEqual(5);
  });

  it('reads a page in index order (users_created_id_live_idx): no sort of the users table, first page or after a cursor', async () => {
    const plan = async (params: unknown[]) =>
      t.node.db.transaction(async (tx) => {
        // A few hundred rows: make the planner show whether the index can serve the query's order.
        await tx.query('set local enable_seqscan = off');
        const { rows } = await tx.query<{ 'QUERY PLAN': string }>(`explain ${LIST_USERS}`, params);
        return rows.map((r) => r['QUERY PLAN']).join('\n');
      });
    for (const params of [
      [null, null, null, 51],
      ['bulk', null, null, 51],
      [null, '1796119200123456', randomUUID(), 26],
    ]) {
      const text = await plan(params);
      expect(text, text).toContain('users_created_id_live_idx');
      expect(text, text).not.toMatch(/\bSort\b/); // neither Sort nor Incremental Sort
    }
  });

  it('defaults to 50 a page, and rows carry no hash or secret', async () => {
    const res = await list('');
    expect(res.statusCode).toBe(200);
    const body = res.json<Listed>();
    expect(body.users).toHaveLength(50);
    expect(body.nextCursor).toEqual(expect.any(String));
    expect(Object.keys(body.users[0] ?? {}).sort()).toEqual(['createdAt', 'disabled', 'email', 'hasSecondFactor', 'id']);
    expect(res.body).not.toMatch(/argon2|password|secret|hash/i);
  });

  it('searches by a part of the email, and shows disabled and second-factor state', async () => {
    await t.app.inject({ method: 'POST', url: `/v1/admin/users/${member.userId}/disable`, headers: op.auth, payload: { disabled: true } });
    await t.node.db.query("insert into mfa_factors (id, user_id, kind, secret_sealed, confirmed_at) values ($1, $2, 'totp', 'sealed', now())", [randomUUID(), op.userId]);
    const res = await list('?q=LIST-');
    expect(res.statusCode).toBe(200);
    expect(res.json<Listed>().users.map((u) => [u.email, u.disabled, u.hasSecondFactor])).toEqual([
      ['list-operator@example.com', false, true],
      ['list-member@example.com', true, false],
    ]);
    const bulk = (await list('?q=bulk-11')).json<Listed>();
    expect(bulk.users.map((u) => u.email)).toEqual(['bulk-110@example.org', 'bulk-111@example.org', 'bulk-112@example.org', 'bulk-113@example.org', 'bulk-114@example.org', 'bulk-115@example.org', 'bulk-116@example.org', 'bulk-117@example.org', 'bulk-118@example.org', 'bulk-119@example.org']);
    expect(bulk.nextCursor).toBeNull();
    // LIKE wildcards are plain characters here.
    expect((await list('?q=%25')).json<Listed>().users).toEqual([]);
    expect((await list('?q=_')).json<Listed>().users).toEqual([]);
  });

  it('attack: a signed-in user who is not an operator lists the users: 403 FORBIDDEN', async () => {
    const other = await signUpUser(t.app, t.mail, 'list-curious@example.com');
    const res = await list('', other);
    expect({ status: res.statusCode, code: res.json().error.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(res.body).not.toContain('list-member@example.com');
    const anonymous = await t.app.inject({ url: '/v1/admin/users' });
    expect({ status: anonymous.statusCode, code: anonymous.json().error.code }).toEqual({ status: 401, code: 'UNAUTHENTICATED' });
  });

  it('attack: a disabled operator lists the users: 403 FORBIDDEN', async () => {
    const former = await signUpUser(t.app, t.mail, 'list-former-op@example.com');
    await t.node.db.query("update users set is_operator = true, status = 'disabled' where id = $1", [former.userId]);
    const res = await list('', former);
    expect({ status: res.statusCode, code: res.json().error.code }).toEqual({ status: 403, code: 'FORBIDDEN' });
    expect(res.body).not.toContain('list-member@example.com');
  });

  it('a forged cursor, a bad limit or an overlong search is refused with 400 VALIDATION_FAILED', async () => {
    const bad = [
      '?cursor=abc',
      '?cursor=1_not-a-uuid',
      `?cursor=${'9'.repeat(18)}_${randomUUID()}`,
      "?cursor=1_00000000-0000-4000-8000-000000000000'--",
      '?limit=0',
      '?limit=101',
      '?limit=-1',
      '?limit=abc',
      '?limit=1.5',
      `?q=${'a'.repeat(255)}`,
      '?q=',
      '?sort=email',
    ];
    for (const query of bad) {
      const res = await list(query);
      expect({ query, status: res.statusCode, code: res.json().error?.code }).toEqual({ query, status: 400, code: 'VALIDATION_FAILED' });
    }
    expect((await list('?limit=100')).json<Listed>().users).toHaveLength(100);
    expect((await list('?limit=1')).json<Listed>().users).toHaveLength(1);
  });
});
