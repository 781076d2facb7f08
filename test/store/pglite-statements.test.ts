/**
 * The PGlite adapter's prepared statements: one statement text is parsed once per session and
 * reused. What must still hold: row-level security follows the role and tenant of each use (a
 * plan prepared as the application role is not reused as the owner's, or the reverse), a failed
 * execution leaves the statement usable, a syntax error is thrown with its code, and past the cap
 * the oldest statements are closed without breaking the ones in use.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db-types.ts';
import { createPgliteDb } from '../../src/store/pglite.ts';

let db: Db;
const orgA = randomUUID();
const orgB = randomUUID();
const SELECT_HEADS = 'select tenant_id from audit_heads where tenant_id = any($1::uuid[]) order by tenant_id';

beforeAll(async () => {
  db = await createPgliteDb({ dataDir: undefined });
  await db.migrate();
  await db.asOwner(async (tx) => {
    for (const id of [orgA, orgB]) {
      await tx.query("insert into tenants (id, kind) values ($1, 'org')", [id]);
      await tx.query('insert into audit_heads (tenant_id) values ($1)', [id]);
    }
  });
});
afterAll(async () => db.close());

describe('prepared statements in the PGlite adapter', () => {
  it('attack: a statement prepared by the owner is not reused with the owner\'s plan by the application role — RLS holds on every use, in any order', async () => {
    const all = [orgA, orgB].sort();
    for (let round = 0; round < 7; round += 1) {
      // Seven rounds: past the point where PostgreSQL switches a prepared statement to a generic plan.
      expect((await db.asOwner((tx) => tx.query<{ tenant_id: string }>(SELECT_HEADS, [[orgA, orgB]]))).rows.map((r) => r.tenant_id)).toEqual(all);
      expect((await db.query<{ tenant_id: string }>(SELECT_HEADS, [[orgA, orgB]])).rows).toEqual([]);
      expect((await db.withTenant(orgA, (tx) => tx.query<{ tenant_id: string }>(SELECT_HEADS, [[orgA, orgB]]))).rows.map((r) => r.tenant_id)).toEqual([orgA]);
      expect((await db.withTenant(orgB, (tx) => tx.query<{ tenant_id: string }>(SELECT_HEADS, [[orgA, orgB]]))).rows.map((r) => r.tenant_id)).toEqual([orgB]);
    }
  });

  it('a statement whose execution failed (unique violation) is used again afterwards', async () => {
    const insert = "insert into tenants (id, kind) values ($1, 'org')";
    const id = randomUUID();
    await db.query(insert, [id]);
    await expect(db.query(insert, [id])).rejects.toMatchObject({ code: '23505' });
    await expect(db.query(insert, [id])).rejects.toMatchObject({ code: '23505' });
    const fresh = randomUUID();
    expect((await db.query(insert, [fresh])).rowCount).toBe(1);
  });

  it('a failed statement inside a transaction rolls the transaction back; the next transaction uses the same statements', async () => {
    const id = randomUUID();
    await expect(
      db.transaction(async (tx) => {
        await tx.query("insert into tenants (id, kind) values ($1, 'org')", [id]);
        await tx.query("insert into tenants (id, kind) values ($1, 'org')", [id]);
      }),
    ).rejects.toMatchObject({ code: '23505' });
    expect((await db.query('select 1 from tenants where id = $1', [id])).rowCount).toBe(0);
    await db.transaction((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [id]));
    expect((await db.query('select 1 from tenants where id = $1', [id])).rowCount).toBe(1);
  });

  it('a syntax error is thrown with its SQLSTATE and leaves the session usable', async () => {
    await expect(db.query('selec 1')).rejects.toMatchObject({ code: '42601' });
    await expect(db.query('selec 1')).rejects.toMatchObject({ code: '42601' });
    expect((await db.query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
  });

  it('past the cap of prepared statements, the oldest are closed and every statement still answers', async () => {
    // 700 distinct texts, more than the 512 kept; each answers its own number.
    for (let i = 0; i < 700; i += 1) {
      const r = await db.query<{ n: number }>(`select $1::int + ${i} as n`, [1]);
      expect(r.rows[0]?.n).toBe(i + 1);
    }
    // The first ones were closed: preparing them again works.
    for (let i = 0; i < 5; i += 1) expect((await db.query<{ n: number }>(`select $1::int + ${i} as n`, [2])).rows[0]?.n).toBe(i + 2);
  });

  it('takes the PostgreSQL adapter\'s JavaScript values: dates, arrays, JSON text, buffers and nulls', async () => {
    const at = new Date('2026-11-23T01:02:03.004Z');
    const r = await db.query<{ at: Date; arr: string[]; j: { a: number }; b: Uint8Array; n: null }>(
      'select $1::timestamptz as at, $2::text[] as arr, $3::jsonb as j, $4::bytea as b, $5::text as n',
      [at, ['x', 'y,z', 'q"uote'], JSON.stringify({ a: 1 }), Buffer.from([0, 1, 255]), null],
    );
    const row = r.rows[0];
    expect(row?.at.toISOString()).toBe(at.toISOString());
    expect(row?.arr).toEqual(['x', 'y,z', 'q"uote']);
    expect(row?.j).toEqual({ a: 1 });
    expect(Buffer.from(row?.b ?? new Uint8Array())).toEqual(Buffer.from([0, 1, 255]));
    expect(row?.n).toBeNull();
  });
});
