/**
 * The audit log's group-commit writer (AUDIT-1): after its first batch, a node appends to a log in
 * one statement planned on the head it last wrote, which writes only if the stored head is still
 * exactly that head. Everything that moves the head behind its back — another node, an append
 * inside a caller's transaction, a checkpoint — must send it back to the locked path, with no
 * gap, no duplicate, no lost checkpoint link: the export still verifies end to end.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog, type AuditLog } from '../../src/audit/log.ts';
import { verifyExport } from '../../src/audit/verify.ts';
import { AUDIT_ACTIONS } from '../../src/features.ts';
import type { Db, Queryable } from '../../src/store/db-types.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
let tenantId: string;
const statements: string[] = [];
let transactions = 0;

/** The node's database, counting what the audit log sends through it. */
function countingDb(db: Db): Db {
  const wrap = (tx: Queryable): Queryable => ({
    ...tx,
    query: (sql: string, params?: readonly unknown[]) => {
      statements.push(sql);
      return tx.query(sql, params);
    },
  }) as Queryable;
  return {
    ...db,
    withTenant: (tenant: string, fn: (tx: Queryable) => Promise<unknown>) => {
      transactions += 1;
      return db.withTenant(tenant, (tx) => fn(wrap(tx)));
    },
  } as Db;
}

function logOn(db: Db): AuditLog {
  return createAuditLog({ db, keyring: t.node.keyring, signingKeys: t.node.signingKeys, settings: { checkpointEvery: 3, checkpointSeconds: 3600, retentionDays: 0 }, actions: AUDIT_ACTIONS, now: Date.now });
}

async function verified(log: AuditLog): Promise<{ ok: boolean; events: number }> {
  const jwks = await t.node.signingKeys.jwks('audit-checkpoint');
  const result = await verifyExport(log.exportLines(tenantId), { trustedKids: jwks.keys.map((k) => k.kid) });
  const seqs = (await t.node.db.asOwner((tx) => tx.query<{ seq: string }>('select seq from audit_events where tenant_id = $1 order by seq', [tenantId]))).rows.map((r) => Number(r.seq));
  expect(seqs).toEqual(seqs.map((_, i) => i));
  return { ok: result.ok, events: seqs.length };
}

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
  tenantId = randomUUID();
  // A log of its own: a tenant row like an org's, without the org.
  await t.node.db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenantId]));
});
afterAll(async () => t.close());

describe('group commit on the remembered head', () => {
  it('after the first batch, an append is one statement in one transaction', async () => {
    const log = logOn(countingDb(t.node.db));
    await log.record({ tenantId, action: 'org.updated', personal: false });
    statements.length = 0;
    transactions = 0;
    await log.record({ tenantId, action: 'org.updated', personal: false });
    expect(transactions).toBe(1);
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatch(/^with h as \(\s*update audit_heads/);
    expect(await verified(log)).toEqual({ ok: true, events: 2 });
  });

  it('two nodes writing the same log in turn: each finds the head moved, falls back to the lock, and nothing is lost or duplicated', async () => {
    const a = logOn(t.node.db);
    const b = logOn(t.node.db);
    const before = (await verified(a)).events;
    for (let i = 0; i < 6; i += 1) {
      await (i % 2 === 0 ? a : b).record({ tenantId, action: 'org.updated', data: { i }, personal: false });
    }
    // And at the same time.
    await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).record({ tenantId, action: 'org.updated', data: { i }, personal: false })));
    expect(await verified(a)).toEqual({ ok: true, events: before + 26 });
  });

  it('an append inside a caller\'s transaction moves the head: the next group commit does not overwrite it', async () => {
    const log = logOn(t.node.db);
    await log.record({ tenantId, action: 'org.updated', personal: false });
    await log.record({ tenantId, action: 'org.updated', personal: false });
    const prepared = await log.prepare({ tenantId, action: 'member.role.changed', personal: false });
    await t.node.db.withTenant(tenantId, (tx) => log.append(tx, prepared));
    const seq = await log.record({ tenantId, action: 'org.updated', personal: false });
    const { events, ok } = await verified(log);
    expect(ok).toBe(true);
    expect(seq).toBe(events - 1);
  });

  it('a rolled-back append in a caller\'s transaction leaves no trace and does not confuse the writer', async () => {
    const log = logOn(t.node.db);
    await log.record({ tenantId, action: 'org.updated', personal: false });
    const prepared = await log.prepare({ tenantId, action: 'member.role.changed', personal: false });
    await expect(
      t.node.db.withTenant(tenantId, async (tx) => {
        await log.append(tx, prepared);
        throw new Error('the change failed');
      }),
    ).rejects.toThrow('the change failed');
    await log.record({ tenantId, action: 'org.updated', personal: false });
    expect((await verified(log)).ok).toBe(true);
  });

  it('a checkpoint signed behind the writer\'s back (checkpointIfBehind) keeps the chain: the next batch links to it', async () => {
    const log = logOn(t.node.db);
    const other = logOn(t.node.db);
    await log.record({ tenantId, action: 'org.updated', personal: false });
    await other.checkpointIfBehind(tenantId, true);
    await log.record({ tenantId, action: 'org.updated', personal: false });
    await log.record({ tenantId, action: 'org.updated', personal: false });
    await log.record({ tenantId, action: 'org.updated', personal: false });
    await log.checkpointIfBehind(tenantId, true);
    const checkpoints = (await t.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_checkpoints where tenant_id = $1 order by size', [tenantId]))).rows.map(
      (r) => JSON.parse(r.body) as { size: number; previous: string | null },
    );
    // Sizes strictly grow and every checkpoint after the first names a predecessor.
    expect(checkpoints.map((c) => c.size)).toEqual([...checkpoints.map((c) => c.size)].sort((x, y) => x - y));
    expect(new Set(checkpoints.map((c) => c.size)).size).toBe(checkpoints.length);
    expect(checkpoints.slice(1).every((c) => c.previous !== null)).toBe(true);
    expect((await verified(log)).ok).toBe(true);
  });
});
