/**
 * The audit log in the database (AUDIT-1..4), in-process on PGlite: events emitted by the
 * features, reads for admins, proofs that verify against signed checkpoints, an export the offline
 * verifier accepts, tampering with the stored rows detected, retention that keeps what the rest
 * needs, and crypto-shredding that never breaks a proof.
 */
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyCheckpointSignature, type Checkpoint } from '../../src/audit/checkpoint.ts';
import { verifyConsistency, verifyInclusion } from '../../src/audit/merkle.ts';
import { verifyExport } from '../../src/audit/verify.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

let t: TestApp;
let clock = Date.parse('2026-11-22T12:00:00Z');
let owner: SignedInUser;
let viewer: SignedInUser;
let org: string;

const b = (s: string): Buffer => Buffer.from(s, 'base64url');

async function call(user: SignedInUser, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: object): Promise<LightMyRequestResponse> {
  return t.app.inject({ method, url, headers: { ...user.auth, 'user-agent': 'audit-test-agent/1.0' }, remoteAddress: '203.0.113.77', ...(payload ? { payload } : {}) });
}

async function exportOf(tenantId: string): Promise<string[]> {
  const lines: string[] = [];
  for await (const line of t.node.audit.exportLines(tenantId)) lines.push(line.trimEnd());
  return lines;
}

async function verifyLines(lines: readonly string[], trusted = true): Promise<Awaited<ReturnType<typeof verifyExport>>> {
  const jwks = await t.node.signingKeys.jwks('audit-checkpoint');
  const options = trusted ? { trustedKids: jwks.keys.map((k) => k.kid) } : {};
  return verifyExport(
    (async function* () {
      yield* lines;
    })(),
    options,
  );
}

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false, 'audit.checkpointEvery': 4 } });
  owner = await signUpUser(t.app, t.mail, 'audit-owner@example.com');
  viewer = await signUpUser(t.app, t.mail, 'audit-viewer@example.com');
  org = (await call(owner, 'POST', '/v1/orgs', { name: 'Audited' })).json().id;
  await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: viewer.email, role: 'viewer' });
  const token = /ghi_[A-Za-z0-9_-]{65}/.exec([...t.mail].reverse().find((m) => m.kind === 'invitation')?.text ?? '')?.[0];
  await call(viewer, 'POST', '/v1/invitations/accept', { token });
  await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'one' });
  // A viewer refused by the matrix: a guard block in the org's log.
  await call(viewer, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'not allowed' });
});
afterAll(async () => t.close());

describe('events', () => {
  it('records org changes with actor, target, request id, and IP and user agent sealed at rest', async () => {
    const res = await call(owner, 'GET', `/v1/orgs/${org}/audit`);
    expect(res.statusCode).toBe(200);
    const events = res.json().events as { action: string; actor: { id: string }; requestId: string; ip: string; ua: string; seq: number }[];
    expect(events.map((e) => e.action).reverse()).toEqual(['org.created', 'invitation.created', 'invitation.accepted', 'workspace.created', 'authz.denied']);
    expect(events.map((e) => e.seq).reverse()).toEqual([0, 1, 2, 3, 4]);
    const created = events.find((e) => e.action === 'org.created');
    expect(created).toMatchObject({ actor: { type: 'user', id: owner.userId }, ip: '203.0.113.77', ua: 'audit-test-agent/1.0' });
    expect(created?.requestId).toMatch(/^[0-9a-f-]{36}$/);
    expect(events.find((e) => e.action === 'authz.denied')).toMatchObject({ actor: { id: viewer.userId }, data: { permission: 'workspaces.create' } });
    // Stored sealed: the plaintext address is nowhere in the rows.
    const raw = await t.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_events where tenant_id = $1', [org]));
    expect(raw.rows.map((r) => r.body).join('\n')).not.toContain('203.0.113.77');
    // The invited address is personal data and is not in the log at all.
    expect(raw.rows.map((r) => r.body).join('\n')).not.toContain(viewer.email);
  });

  it('filters by action and actor and pages with a cursor; viewers cannot read the log', async () => {
    const only = await call(owner, 'GET', `/v1/orgs/${org}/audit?action=workspace.created`);
    expect(only.json().events.map((e: { action: string }) => e.action)).toEqual(['workspace.created']);
    const byViewer = await call(owner, 'GET', `/v1/orgs/${org}/audit?actor=${viewer.userId}`);
    expect(byViewer.json().events.map((e: { action: string }) => e.action)).toEqual(['authz.denied', 'invitation.accepted']);
    const page1 = await call(owner, 'GET', `/v1/orgs/${org}/audit?limit=2`);
    const page2 = await call(owner, 'GET', `/v1/orgs/${org}/audit?limit=2&cursor=${page1.json().nextCursor}`);
    expect(page2.json().events.map((e: { seq: number }) => e.seq)).toEqual([2, 1]);
    expect((await call(viewer, 'GET', `/v1/orgs/${org}/audit`)).statusCode).toBe(403);
    expect((await call(owner, 'GET', `/v1/orgs/${org}/audit?action=not.an.action`)).statusCode).toBe(400);
  });

  it('records sign-ins, failures and account events in the platform log', async () => {
    await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'audit-owner@example.com', password: 'wrong password for the audit test' } });
    await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'nobody-here@example.com', password: 'wrong password for the audit test' } });
    const { events } = await t.node.audit.list(PLATFORM_TENANT_ID, { limit: 500 });
    const actions = events.map((e) => `${String(e.action)}:${(e.target as { id?: string } | null)?.id ?? '-'}`);
    expect(actions).toContain(`auth.login.succeeded:${owner.userId}`);
    expect(actions).toContain(`auth.login.failed:${owner.userId}`);
    expect(actions).toContain('auth.login.failed:-');
    // Every start records the fingerprint of the effective configuration (secrets masked).
    expect(events.find((e) => e.action === 'node.started')?.data.configSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(actions).toContain(`auth.email.verified:${viewer.userId}`);
    expect(JSON.stringify(events)).not.toContain('nobody-here@example.com');
  });
});

describe('proofs and checkpoints', () => {
  it('serves inclusion and consistency proofs that verify against signed checkpoints', async () => {
    for (let i = 0; i < 6; i += 1) await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: `ws ${i}` });
    const cps = (await call(owner, 'GET', `/v1/orgs/${org}/audit/checkpoints`)).json().checkpoints as { checkpoint: Checkpoint; signature: string }[];
    expect(cps.length).toBeGreaterThanOrEqual(2);
    const jwks = await t.node.signingKeys.jwks('audit-checkpoint');
    for (const cp of cps) {
      const key = jwks.keys.find((k) => k.kid === cp.checkpoint.kid);
      expect(key && verifyCheckpointSignature(cp, key)).toBe(true);
    }
    const [newest, older] = cps;
    if (!newest || !older) throw new Error('need two checkpoints');
    const size = newest.checkpoint.size;
    for (let index = 0; index < size; index += 1) {
      const p = (await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/inclusion?index=${index}&size=${size}`)).json();
      expect(p.root).toBe(newest.checkpoint.root);
      expect(p.checkpoint.signature).toBe(newest.signature);
      expect(verifyInclusion(b(p.leafHash), index, size, p.proof.map(b), b(newest.checkpoint.root))).toBe(true);
    }
    const c = (await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/consistency?from=${older.checkpoint.size}&to=${size}`)).json();
    expect(verifyConsistency(older.checkpoint.size, size, c.proof.map(b), b(older.checkpoint.root), b(newest.checkpoint.root))).toBe(true);
    expect((await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/inclusion?index=${size}&size=${size}`)).statusCode).toBe(400);
    expect((await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/inclusion?index=0&size=999999`)).statusCode).toBe(400);
    expect((await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/consistency?from=0&to=1`)).statusCode).toBe(400);
    expect((await call(owner, 'GET', `/v1/orgs/${org}/audit/proof/inclusion?index=-1&size=2`)).statusCode).toBe(400);
  });
});

describe('export and tampering', () => {
  it('exports JSON Lines that the offline verifier accepts, with the keys pinned', async () => {
    const res = await call(owner, 'GET', `/v1/orgs/${org}/audit/export`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('application/x-ndjson');
    const lines = res.body.trimEnd().split('\n');
    const report = await verifyLines(lines);
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.events).toBeGreaterThanOrEqual(11);
  });

  it('refuses UPDATE and DELETE of audit rows: the application role has no privilege, the owner meets the trigger', async () => {
    await expect(t.node.db.withTenant(org, (tx) => tx.query("update audit_events set body = 'x' where seq = 0"))).rejects.toThrow(/permission denied/);
    await expect(t.node.db.withTenant(org, (tx) => tx.query('delete from audit_events where seq = 0'))).rejects.toThrow(/permission denied/);
    await expect(t.node.db.asOwner((tx) => tx.query("update audit_events set body = 'x' where tenant_id = $1 and seq = 0", [org]))).rejects.toThrow(/append-only/);
    await expect(t.node.db.asOwner((tx) => tx.query('delete from audit_events where tenant_id = $1 and seq = 0', [org]))).rejects.toThrow(/append-only/);
    await expect(t.node.db.asOwner((tx) => tx.query('delete from audit_checkpoints where tenant_id = $1', [org]))).rejects.toThrow(/append-only/);
  });

  /** Tampers with stored rows the way someone with the database's superuser could (trigger off), in a log of its own. */
  async function tamperedExport(sql: string): Promise<Awaited<ReturnType<typeof verifyExport>>> {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    for (let i = 0; i < 8; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { n: i } });
    await t.node.db.asOwner(async (tx) => {
      await tx.query('alter table audit_events disable trigger audit_events_append_only');
      await tx.query(sql.replaceAll('$LOG', `'${log}'`));
      await tx.query('alter table audit_events enable trigger audit_events_append_only');
    });
    return verifyLines(await exportOf(log));
  }

  it('detects a modified event stored in the database and names it (EVENT_MODIFIED at its index, with its id), from the leaf hash stored with the tree', async () => {
    const r = await tamperedExport(`update audit_events set body = replace(body, '"n":2', '"n":20') where tenant_id = $LOG and seq = 2`);
    expect(r.problem).toMatchObject({ reason: 'EVENT_MODIFIED', index: 2, eventId: expect.stringMatching(/^[0-9a-f-]{36}$/) });
  });

  it('detects a deleted event (SEQ_GAP at its index)', async () => {
    const r = await tamperedExport('delete from audit_events where tenant_id = $LOG and seq = 5');
    expect({ reason: r.problem?.reason, index: r.problem?.index }).toEqual({ reason: 'SEQ_GAP', index: 5 });
  });

  it('detects two events swapped in place (their seq no longer matches their position)', async () => {
    const r = await tamperedExport(
      `update audit_events e set body = o.body from audit_events o where e.tenant_id = $LOG and o.tenant_id = $LOG and ((e.seq = 1 and o.seq = 6) or (e.seq = 6 and o.seq = 1))`,
    );
    expect(r.ok).toBe(false);
    expect(['SEQ_MISMATCH', 'SEQ_OUT_OF_ORDER', 'ROOT_MISMATCH']).toContain(r.problem?.reason);
  });
});

describe('tampering that needs the database superuser', () => {
  it('detects an event inserted into the stored log (the later events no longer carry their seq)', async () => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    for (let i = 0; i < 8; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { n: i } });
    await t.node.db.asOwner(async (tx) => {
      await tx.query('alter table audit_events disable trigger audit_events_append_only');
      // Make room at seq 3 (highest first, so the primary key never collides), then forge an event there.
      for (let seq = 7; seq >= 3; seq -= 1) await tx.query('update audit_events set seq = seq + 1 where tenant_id = $1 and seq = $2', [log, seq]);
      await tx.query(
        "insert into audit_events (tenant_id, seq, id, time, action, actor_id, body) select tenant_id, 3, gen_random_uuid(), time, action, actor_id, replace(body, '\"n\":2', '\"n\":99') from audit_events where tenant_id = $1 and seq = 2",
        [log],
      );
      await tx.query('alter table audit_events enable trigger audit_events_append_only');
    });
    const r = await verifyLines(await exportOf(log));
    expect(r.ok).toBe(false);
    expect(r.problem?.index).toBe(3);
  });

  it('a log cut back behind an auditor\'s back cannot prove consistency with the checkpoint the auditor kept', async () => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    for (let i = 0; i < 12; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { n: i } });
    const saved = (await t.node.audit.checkpoints(log, { limit: 1 })).checkpoints[0];
    if (!saved) throw new Error('no checkpoint');
    const kept = saved.checkpoint;
    // Rewind to the first 5 events: delete the rest, their nodes and checkpoints, and the head's size.
    await t.node.db.asOwner(async (tx) => {
      for (const table of ['audit_events', 'audit_nodes', 'audit_checkpoints']) await tx.query(`alter table ${table} disable trigger all`);
      await tx.query('delete from audit_events where tenant_id = $1 and seq >= 5', [log]);
      await tx.query('delete from audit_checkpoints where tenant_id = $1 and size > 5', [log]);
      await tx.query('delete from audit_nodes where tenant_id = $1 and (idx + 1) * power(2, level) > 5', [log]);
      for (const table of ['audit_events', 'audit_nodes', 'audit_checkpoints']) await tx.query(`alter table ${table} enable trigger all`);
    });
    const frontier = await t.node.db.asOwner(async (tx) => {
      const nodes = await tx.query<{ hash: Uint8Array }>('select hash from audit_nodes where tenant_id = $1 and ((level = 2 and idx = 0) or (level = 0 and idx = 4)) order by level desc', [log]);
      return nodes.rows.map((n) => Buffer.from(n.hash).toString('base64url'));
    });
    await t.node.db.asOwner((tx) => tx.query('update audit_heads set size = 5, frontier = $2, last_checkpoint_size = 5 where tenant_id = $1', [log, JSON.stringify(frontier)]));
    // The cut log still verifies on its own (it is a consistent shorter log) ...
    expect(await t.node.audit.consistency(log, 1, 5)).not.toBeNull();
    // ... but not against what the auditor kept: the size they hold no longer exists.
    expect(await t.node.audit.consistency(log, 5, kept.size)).toBeNull();
    // Nor does its export, given the checkpoint the auditor saved and the server's keys.
    const lines = await exportOf(log);
    const { keys } = await t.node.signingKeys.jwks('audit-checkpoint');
    const cut = await verifyExport(
      (async function* () {
        yield* lines;
      })(),
      { trustedKeys: keys, pins: { checkpoint: saved } },
    );
    expect(cut.problem).toMatchObject({ reason: 'BELOW_PINNED_SIZE', index: 5 });
  });
});

describe('concurrency, retention and shredding', () => {
  it('gives 40 concurrent appends gapless, unique sequence numbers', async () => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    const seqs = await Promise.all(Array.from({ length: 40 }, (_, i) => t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i } })));
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect((await verifyLines(await exportOf(log))).ok).toBe(true);
  });

  it('prunes events past retention up to a checkpoint; what remains still verifies and proves', async () => {
    const log = randomUUID();
    await t.node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    for (let i = 0; i < 10; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i } });
    clock += 400 * 86_400_000;
    try {
      for (let i = 10; i < 14; i += 1) await t.node.audit.record({ tenantId: log, action: 'org.updated', data: { i } });
      // Checkpoints fell at sizes 1 (the first event: none before it), 5 and 9 (every 4), then 11 (time):
      // the old events 0..9 can go only up to the checkpoint at 9.
      const pruned = await t.node.audit.prune(log);
      expect(pruned).toEqual({ removed: 9, prunedUpto: 9 });
      const lines = await exportOf(log);
      expect(lines.some((l) => l.includes('"type":"pruned"'))).toBe(true);
      const report = await verifyLines(lines);
      expect(report.problem).toBeUndefined();
      expect(report.ok).toBe(true);
      const proof = await t.node.audit.inclusion(log, 12, 14);
      expect(proof && verifyInclusion(b(proof.leafHash), 12, 14, proof.proof.map(b), b(proof.root))).toBe(true);
    } finally {
      clock -= 400 * 86_400_000;
    }
  });

  it('keeps an org\'s log verifiable after the org is deleted and its keys shredded; sealed fields read as null', async () => {
    const doomed = (await call(owner, 'POST', '/v1/orgs', { name: 'Shredded' })).json().id as string;
    await call(owner, 'POST', `/v1/orgs/${doomed}/workspaces`, { name: 'w' });
    expect((await call(owner, 'DELETE', `/v1/orgs/${doomed}`)).statusCode).toBe(204);
    const report = await verifyLines(await exportOf(doomed));
    expect(report.ok).toBe(true);
    const { events } = await t.node.audit.list(doomed, { limit: 10 });
    expect(events.map((e) => e.action)).toEqual(['keys.shredded', 'org.deleted', 'workspace.created', 'org.created']);
    expect(events.find((e) => e.action === 'org.created')?.ip).toBeNull();
  });

  it('logs an account deletion and the operator setup in the platform log', async () => {
    const leaving = await signUpUser(t.app, t.mail, 'audit-leaving@example.com');
    await t.app.inject({ method: 'DELETE', url: '/v1/me', headers: leaving.auth, payload: { password: TEST_PASSWORD } });
    const { events } = await t.node.audit.list(PLATFORM_TENANT_ID, { action: 'account.deleted', limit: 10 });
    expect(events.map((e) => (e.target as { id: string }).id)).toContain(leaving.userId);
  });
});

describe('the platform log for operators', () => {
  it('lets operators read and export the platform log, and refuses everyone else (403)', async () => {
    expect((await call(owner, 'GET', '/v1/admin/audit')).statusCode).toBe(403);
    const token = await t.node.identity.accounts.ensureSetupToken();
    const setup = await t.app.inject({ method: 'POST', url: '/v1/setup', payload: { token, email: 'audit-operator@example.com', password: TEST_PASSWORD } });
    expect(setup.statusCode).toBe(201);
    const login = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'audit-operator@example.com', password: TEST_PASSWORD } });
    const op = { authorization: `Bearer ${login.json().accessToken as string}` };
    const res = await t.app.inject({ url: '/v1/admin/audit?action=operator.setup.completed', headers: op });
    expect(res.statusCode).toBe(200);
    expect(res.json().events).toHaveLength(1);
    const exported = await t.app.inject({ url: '/v1/admin/audit/export', headers: op });
    expect((await verifyLines(exported.body.trimEnd().split('\n'))).ok).toBe(true);
  });
});

describe('listing logs (the audit_heads_scan policy)', () => {
  it('lists every log, and only logs behind their checkpoint when asked', async () => {
    const all = await t.node.audit.logs();
    expect(all).toEqual(expect.arrayContaining([PLATFORM_TENANT_ID, org]));
    const behind = await t.node.audit.logs({ behind: true });
    for (const log of behind) expect(all).toContain(log);
    await t.node.audit.checkpointIfBehind(org, true);
    expect(await t.node.audit.logs({ behind: true })).not.toContain(org);
  });

  it('attack: a transaction that sets gatehouse.audit_scan in another tenant\'s context reads head rows only; it cannot change another log\'s head, nor read its events', async () => {
    const other = randomUUID();
    const attempt = await t.node.db.withTenant(other, async (tx) => {
      await tx.query("select set_config('gatehouse.audit_scan', 'on', true)");
      const heads = await tx.query<{ tenant_id: string }>('select tenant_id::text as tenant_id from audit_heads where tenant_id = $1', [org]);
      const updated = await tx.query('update audit_heads set pruned_upto = pruned_upto where tenant_id = $1', [org]);
      const events = await tx.query<{ n: number }>('select count(*)::int as n from audit_events where tenant_id = $1', [org]);
      const checkpoints = await tx.query<{ n: number }>('select count(*)::int as n from audit_checkpoints where tenant_id = $1', [org]);
      return { heads: heads.rows.length, updated: updated.rowCount, events: events.rows[0]?.n, checkpoints: checkpoints.rows[0]?.n };
    });
    expect(attempt).toEqual({ heads: 1, updated: 0, events: 0, checkpoints: 0 });
  });
});
