/**
 * One behavioural suite for every storage adapter: migrations, the role model, and tenant
 * isolation through row-level security. db.test.ts runs it against PGlite and PostgreSQL.
 *
 * Tests run in file order on one Db per adapter; the first two expect an unmigrated store.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { APP_ROLE, TENANT_SETTING, type Db, type Queryable } from '../../../src/store/db-types.ts';
import { findRlsGaps, loadMigrations } from '../../../src/store/migrate.ts';

export interface SharedSuiteHandle {
  db: Db;
  cleanup: () => Promise<void>;
  /** Opens a second Db on the same storage, as a second node would; absent where storage cannot be shared. */
  openAnother?: () => Promise<Db>;
}

const RLS_VIOLATION_OR_DENIED = { code: '42501' };

const PROBE_POLICY = "tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid)";

interface ProbeRow {
  id: string;
  tenant_id: string;
  body: string | null;
}

const quoteIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/** Registers the adapter-independent storage suite under `name`; makeDb must return an unmigrated, empty store. */
export function dbSharedSuite(name: string, makeDb: () => Promise<SharedSuiteHandle>): void {
  describe(name, () => {
    let handle: SharedSuiteHandle | undefined;
    const db = (): Db => {
      if (!handle) throw new Error('makeDb() failed; see the beforeAll error');
      return handle.db;
    };

    beforeAll(async () => {
      handle = await makeDb();
    });
    afterAll(async () => {
      await handle?.cleanup();
    });

    const tenantA = randomUUID();
    const tenantB = randomUUID();
    const idsA = [randomUUID(), randomUUID(), randomUUID()];
    const idsB = [randomUUID(), randomUUID()];

    let probe: Promise<void> | undefined;
    const ready = (): Promise<void> =>
      (probe ??= (async () => {
        await db().migrate();
        await db().asOwner(async (tx) => {
          await tx.query('create table rls_probe (id uuid primary key, tenant_id uuid not null, body text)');
          await tx.query('alter table rls_probe enable row level security');
          await tx.query('alter table rls_probe force row level security');
          await tx.query(`create policy rls_probe_tenant on rls_probe using (${PROBE_POLICY}) with check (${PROBE_POLICY})`);
          await tx.query('create index rls_probe_tenant_id on rls_probe (tenant_id)');
          await tx.query(`grant select, insert, update, delete on rls_probe to ${APP_ROLE}`);
          for (const id of idsA) await tx.query("insert into rls_probe values ($1, $2, 'a')", [id, tenantA]);
          for (const id of idsB) await tx.query("insert into rls_probe values ($1, $2, 'b')", [id, tenantB]);
        });
      })());

    const ownerRows = async (): Promise<ProbeRow[]> =>
      (await db().asOwner((tx) => tx.query<ProbeRow>('select id, tenant_id, body from rls_probe order by id'))).rows;

    it('refuses application-role work before migrate() with an error that says so', async () => {
      await expect(db().query('select 1')).rejects.toThrow(/migrate\(\)/);
      await expect(db().withTenant(tenantA, (tx) => tx.query('select 1'))).rejects.toThrow(/migrate\(\)/);
      await db().ping();
    });

    it('applies each migration exactly once when two nodes migrate at the same time', async () => {
      const names = (await loadMigrations()).map((m) => m.name);
      expect(names.length).toBeGreaterThan(0);
      const other = handle?.openAnother ? await handle.openAnother() : undefined;
      try {
        // Several callers per node widen the race window a missing lock would open.
        const nodes = [db(), other ?? db()];
        const results = await Promise.all([...nodes, ...nodes, ...nodes].map((node) => node.migrate()));
        expect(results.flatMap((r) => r.applied).sort()).toEqual(names);
        for (const result of results) expect(result.applied.length + result.alreadyApplied).toBe(names.length);
      } finally {
        await other?.close();
      }
      const recorded = await db().asOwner((tx) => tx.query<{ name: string }>('select name from schema_migrations order by name'));
      expect(recorded.rows.map((r) => r.name)).toEqual(names);
    });

    it('applies nothing on a second migrate and records every migration with its checksum', async () => {
      const migrations = await loadMigrations();
      await db().migrate();
      expect(await db().migrate()).toEqual({ applied: [], alreadyApplied: migrations.length });
      const recorded = await db().asOwner((tx) =>
        tx.query<{ name: string; checksum: string; applied_at: unknown }>(
          'select name, checksum, applied_at from schema_migrations order by name',
        ),
      );
      expect(recorded.rows.map(({ name, checksum }) => ({ name, checksum }))).toEqual(
        migrations.map(({ name, checksum }) => ({ name, checksum })),
      );
      for (const row of recorded.rows) expect(row.applied_at).toBeInstanceOf(Date);
    });

    it('refuses to migrate when an applied migration changed on disk, naming it', async () => {
      await db().migrate();
      const [first] = await loadMigrations();
      if (!first) throw new Error('no migrations');
      // Editing the stored checksum is the same mismatch as editing the file.
      await db().asOwner((tx) => tx.query("update schema_migrations set checksum = 'edited' where name = $1", [first.name]));
      try {
        const failure = db().migrate();
        await expect(failure).rejects.toThrow(first.name);
        await expect(failure).rejects.toThrow(/checksum/);
      } finally {
        await db().asOwner((tx) => tx.query('update schema_migrations set checksum = $2 where name = $1', [first.name, first.checksum]));
      }
      expect((await db().migrate()).applied).toEqual([]);
    });

    it('runs plain queries, transactions and tenant work as the application role, before and after owner work', async () => {
      await ready();
      const who = async (): Promise<string[]> => [
        (await db().query<{ u: string }>('select current_user as u')).rows[0]?.u ?? '',
        await db().transaction(async (tx) => (await tx.query<{ u: string }>('select current_user as u')).rows[0]?.u ?? ''),
        await db().withTenant('00000000-0000-4000-8000-0000000000aa', async (tx) => (await tx.query<{ u: string }>('select current_user as u')).rows[0]?.u ?? ''),
      ];
      expect(await who()).toEqual([APP_ROLE, APP_ROLE, APP_ROLE]);
      const owner = await db().asOwner(async (tx) => (await tx.query<{ u: string }>('select current_user as u')).rows[0]?.u);
      expect(owner).not.toBe(APP_ROLE);
      // The owner's role ends with its transaction.
      expect(await who()).toEqual([APP_ROLE, APP_ROLE, APP_ROLE]);
      await db().migrate();
      expect(await who()).toEqual([APP_ROLE, APP_ROLE, APP_ROLE]);
    });

    it('gives the application role no ownership, no superuser, no BYPASSRLS and no inherited roles', async () => {
      await ready();
      const role = await db().asOwner((tx) =>
        tx.query<{ rolsuper: boolean; rolbypassrls: boolean; rolcreaterole: boolean; rolcreatedb: boolean; rolcanlogin: boolean }>(
          'select rolsuper, rolbypassrls, rolcreaterole, rolcreatedb, rolcanlogin from pg_roles where rolname = $1',
          [APP_ROLE],
        ),
      );
      expect(role.rows).toEqual([
        { rolsuper: false, rolbypassrls: false, rolcreaterole: false, rolcreatedb: false, rolcanlogin: db().kind === 'postgres' },
      ]);
      const owned = await db().asOwner((tx) =>
        tx.query<{ what: string }>(
          `with app as (select oid from pg_roles where rolname = $1)
           select 'relation ' || relname as what from pg_class where relowner = (select oid from app)
           union all select 'function ' || proname from pg_proc where proowner = (select oid from app)
           union all select 'schema ' || nspname from pg_namespace where nspowner = (select oid from app)
           union all select 'type ' || typname from pg_type where typowner = (select oid from app)
           union all select 'object ' || pg_describe_object(classid, objid, objsubid) from pg_shdepend
                      where refobjid = (select oid from app) and deptype = 'o'
                        and dbid = (select oid from pg_database where datname = current_database())`,
          [APP_ROLE],
        ),
      );
      expect(owned.rows).toEqual([]);
      const memberships = await db().asOwner((tx) =>
        tx.query('select roleid::regrole::text from pg_auth_members where member = (select oid from pg_roles where rolname = $1)', [APP_ROLE]),
      );
      expect(memberships.rows).toEqual([]);
    });

    it('finds forced row-level security on every public table with a tenant_id column (TEN-3)', async () => {
      await ready();
      const covered = await db().asOwner((tx) =>
        tx.query<{ relname: string }>(
          `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r', 'p')
              and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)`,
        ),
      );
      // The scan must have something to look at, or an empty result proves nothing.
      expect(covered.rows.map((r) => r.relname)).toContain('rls_probe');
      expect(await db().asOwner((tx) => findRlsGaps(tx))).toEqual([]);
    });

    it('makes the TEN-3 scan flag a new table without RLS, RLS without FORCE, and an owner-rights view', async () => {
      await ready();
      const rollback = new Error('roll back the scan fixtures');
      let gaps: unknown;
      await expect(
        db().asOwner(async (tx) => {
          await tx.query('create table scan_plain (id uuid primary key, tenant_id uuid not null)');
          await tx.query('create table scan_unforced (id uuid primary key, tenant_id uuid not null)');
          await tx.query('alter table scan_unforced enable row level security');
          await tx.query('create view scan_view as select id, tenant_id from rls_probe');
          gaps = await findRlsGaps(tx);
          throw rollback;
        }),
      ).rejects.toBe(rollback);
      expect(gaps).toEqual([
        { relation: 'scan_plain', problem: 'row level security is not enabled' },
        { relation: 'scan_unforced', problem: 'row level security is not forced for the owner' },
        { relation: 'scan_view', problem: "view runs with its owner's rights (needs security_invoker = true)" },
      ]);
      expect(await db().asOwner((tx) => findRlsGaps(tx))).toEqual([]);
    });

    it("shows withTenant only that tenant's rows", async () => {
      await ready();
      const seenA = await db().withTenant(tenantA, (tx) => tx.query<ProbeRow>('select id, tenant_id from rls_probe order by id'));
      expect(seenA.rows.map((r) => r.id)).toEqual([...idsA].sort());
      expect(new Set(seenA.rows.map((r) => r.tenant_id))).toEqual(new Set([tenantA]));
      const seenB = await db().withTenant(tenantB, (tx) => tx.query<ProbeRow>('select id from rls_probe where id = any($1::uuid[])', [[...idsA, ...idsB]]));
      expect(seenB.rows.map((r) => r.id).sort()).toEqual([...idsB].sort());
    });

    it("lets withTenant update or delete none of another tenant's rows", async () => {
      await ready();
      const before = await ownerRows();
      const updated = await db().withTenant(tenantA, (tx) =>
        tx.query("update rls_probe set body = 'stolen' where id = any($1::uuid[])", [idsB]),
      );
      expect(updated.rowCount).toBe(0);
      const deleted = await db().withTenant(tenantA, (tx) => tx.query('delete from rls_probe where id = any($1::uuid[])', [idsB]));
      expect(deleted.rowCount).toBe(0);
      // Moving an own row into another tenant is refused by WITH CHECK.
      await expect(
        db().withTenant(tenantA, (tx) => tx.query('update rls_probe set tenant_id = $2 where id = $1', [idsA[0], tenantB])),
      ).rejects.toMatchObject(RLS_VIOLATION_OR_DENIED);
      expect(await ownerRows()).toEqual(before);
    });

    it('refuses a withTenant insert of a row for another tenant', async () => {
      await ready();
      await expect(
        db().withTenant(tenantA, (tx) => tx.query("insert into rls_probe values ($1, $2, 'forged')", [randomUUID(), tenantB])),
      ).rejects.toMatchObject({ ...RLS_VIOLATION_OR_DENIED, message: expect.stringMatching(/row-level security/) });
      const own = randomUUID();
      await db().withTenant(tenantA, (tx) => tx.query("insert into rls_probe values ($1, $2, 'own')", [own, tenantA]));
      await db().asOwner((tx) => tx.query('delete from rls_probe where id = $1', [own]));
    });

    it('shows the application role no tenant rows without a tenant context', async () => {
      await ready();
      expect((await db().query<{ n: string }>('select count(*) as n from rls_probe')).rows).toEqual([{ n: '0' }]);
      expect((await db().transaction((tx) => tx.query('select id from rls_probe'))).rows).toEqual([]);
      await expect(
        db().transaction((tx) => tx.query("insert into rls_probe values ($1, $2, 'x')", [randomUUID(), tenantA])),
      ).rejects.toMatchObject(RLS_VIOLATION_OR_DENIED);
    });

    it('does not let the application role switch back to the owner', async (ctx) => {
      await ready();
      ctx.skip(
        db().kind === 'pglite',
        'PGlite has a single superuser session: SQL run as the app role can RESET ROLE; this is a known limit of the embedded adapter',
      );
      const owner = (await db().asOwner((tx) => tx.query<{ u: string }>('select current_user as u'))).rows[0]?.u;
      if (!owner) throw new Error('no owner name');
      await expect(db().withTenant(tenantA, (tx) => tx.query(`set role ${quoteIdent(owner)}`))).rejects.toMatchObject(RLS_VIOLATION_OR_DENIED);
      await expect(db().query(`set session authorization ${quoteIdent(owner)}`)).rejects.toMatchObject(RLS_VIOLATION_OR_DENIED);
      const who = await db().withTenant(tenantA, async (tx) => {
        await tx.query('reset role');
        return tx.query<{ u: string; s: boolean }>("select current_user as u, current_setting('is_superuser') = 'on' as s");
      });
      expect(who.rows).toEqual([{ u: APP_ROLE, s: false }]);
    });

    it('never lets tenant context leak between concurrent transactions or pooled connections', async () => {
      await ready();
      const runs = Array.from({ length: 50 }, (_, i) => (i % 2 === 0 ? tenantA : tenantB));
      // The sleeps keep transactions open together so they spread over a pool's connections; PGlite has one.
      const pause = db().kind === 'postgres' ? 0.005 : 0;
      const seen = await Promise.all(
        runs.map((tenant) =>
          db().withTenant(tenant, async (tx) => {
            const setting = await tx.query<{ t: string; pid: number }>(
              'select current_setting($1, true) as t, pg_backend_pid() as pid, pg_sleep($2)',
              [TENANT_SETTING, pause],
            );
            const rows = await tx.query<{ tenant_id: string }>('select tenant_id from rls_probe');
            return { tenant, setting: setting.rows[0], owners: rows.rows.map((r) => r.tenant_id) };
          }),
        ),
      );
      for (const { tenant, setting, owners } of seen) {
        expect(setting?.t).toBe(tenant);
        expect(owners).toHaveLength(tenant === tenantA ? idsA.length : idsB.length);
        expect(new Set(owners)).toEqual(new Set([tenant]));
      }
      if (db().kind === 'postgres') expect(new Set(seen.map((s) => s.setting?.pid)).size).toBeGreaterThan(1);

      const after = await Promise.all(
        Array.from({ length: 20 }, () =>
          db().query<{ t: string | null; pid: number }>('select current_setting($1, true) as t, pg_backend_pid() as pid, pg_sleep($2)', [
            TENANT_SETTING,
            pause * 2,
          ]),
        ),
      );
      for (const result of after) expect(result.rows[0]?.t ?? '').toBe('');
      if (db().kind === 'postgres') expect(new Set(after.map((r) => r.rows[0]?.pid)).size).toBeGreaterThan(1);
    });

    it('rolls back the writes of a callback that throws', async () => {
      await ready();
      const id = randomUUID();
      const boom = new Error('boom');
      await expect(
        db().withTenant(tenantA, async (tx) => {
          await tx.query("insert into rls_probe values ($1, $2, 'doomed')", [id, tenantA]);
          throw boom;
        }),
      ).rejects.toBe(boom);
      await expect(
        db().transaction(async (tx) => {
          await tx.query("insert into tenants (id, kind) values ($1, 'org')", [id]);
          throw boom;
        }),
      ).rejects.toBe(boom);
      expect((await ownerRows()).map((r) => r.id)).not.toContain(id);
      const tenants = await db().asOwner((tx) => tx.query('select id from tenants where id = $1', [id]));
      expect(tenants.rows).toEqual([]);
    });

    it('fails the commit of a transaction in which a swallowed statement failed', async () => {
      await ready();
      const id = randomUUID();
      await expect(
        db().withTenant(tenantA, async (tx) => {
          await tx.query("insert into rls_probe values ($1, $2, 'half')", [id, tenantA]);
          await tx.query('select 1 / 0').catch(() => undefined);
        }),
      ).rejects.toThrow(/rolled back/i);
      expect((await ownerRows()).map((r) => r.id)).not.toContain(id);
    });

    it('denies the application role DDL, TRUNCATE, RLS changes and the migration table', async () => {
      await ready();
      const denied = async (sql: string): Promise<void> => {
        await expect(db().transaction((tx) => tx.query(sql)), sql).rejects.toMatchObject(RLS_VIOLATION_OR_DENIED);
      };
      await denied('create table app_made (id int)');
      await denied('alter table rls_probe disable row level security');
      await denied('alter table rls_probe no force row level security');
      await denied('drop policy rls_probe_tenant on rls_probe');
      await denied('drop table rls_probe');
      // TRUNCATE is not subject to row-level security, so the app role must not have it at all.
      await denied('truncate rls_probe');
      await denied('select * from schema_migrations');
      await denied("update tenants set kind = 'platform'");
      await denied('delete from tenants');
      const tenant = randomUUID();
      await db().query("insert into tenants (id, kind) values ($1, 'org')", [tenant]);
      expect((await db().query('select kind from tenants where id = $1', [tenant])).rows).toEqual([{ kind: 'org' }]);
      expect(await ownerRows()).toHaveLength(idsA.length + idsB.length);
    });

    it('rejects a malformed tenant id before touching the database', async () => {
      await ready();
      const bad = ['not-a-uuid', '', tenantA.toUpperCase(), `${tenantA}' or '1'='1`, ` ${tenantA}`, 42 as unknown as string];
      for (const tenantId of bad) {
        let called = false;
        await expect(
          db().withTenant(tenantId, async (tx) => {
            called = true;
            return tx.query('select 1');
          }),
          String(tenantId),
        ).rejects.toBeInstanceOf(TypeError);
        expect(called).toBe(false);
      }
    });

    it('refuses nested db calls inside a callback and a tx handle used after its transaction', async () => {
      await ready();
      await expect(db().withTenant(tenantA, () => db().query('select 1'))).rejects.toThrow(/inside a transaction/);
      await expect(db().transaction(() => db().withTenant(tenantB, (tx) => tx.query('select 1')))).rejects.toThrow(
        /inside a transaction/,
      );
      let leaked: Queryable | undefined;
      await db().withTenant(tenantA, async (tx) => {
        leaked = tx;
      });
      await expect(leaked?.query('select 1')).rejects.toThrow(/ended/);
      // Unrelated work started afterwards is not mistaken for nesting.
      await db().query('select 1');
    });

    it('runs exactly one statement per query, so stacked SQL is refused', async () => {
      await ready();
      await expect(db().query('select 1; delete from tenants')).rejects.toThrow(/multiple commands|cannot insert multiple/i);
      await expect(
        db().withTenant(tenantA, (tx) => tx.query(`select 1; delete from rls_probe where tenant_id = '${tenantA}'`)),
      ).rejects.toThrow();
      await expect(db().asOwner((tx) => tx.query('select 1; select 2'))).rejects.toThrow();
      expect(await ownerRows()).toHaveLength(idsA.length + idsB.length);
    });

    it('returns the same JavaScript types on every adapter', async () => {
      await ready();
      const result = await db().query<Record<string, unknown>>(
        `select 9007199254740993::int8 as i8, array[1, 2]::int8[] as i8s, 2::int4 as i4, 1.5::float8 as f8,
                1.10::numeric as num, '2024-01-02'::date as d, array['2024-01-02'::date] as ds,
                '1 day 02:00:00'::interval as iv, '2024-01-02T03:04:05Z'::timestamptz as ts,
                '\\x0102'::bytea as b, '{"a": [1]}'::jsonb as j, true as bool, null::text as nothing,
                '5f0c6d1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f'::uuid as u`,
      );
      const row = result.rows[0];
      expect(row).toMatchObject({
        i8: '9007199254740993',
        i8s: ['1', '2'],
        i4: 2,
        f8: 1.5,
        num: '1.10',
        d: '2024-01-02',
        ds: ['2024-01-02'],
        iv: '1 day 02:00:00',
        j: { a: [1] },
        bool: true,
        nothing: null,
        u: '5f0c6d1e-2a3b-4c5d-8e9f-0a1b2c3d4e5f',
      });
      expect(row?.ts).toEqual(new Date('2024-01-02T03:04:05Z'));
      expect(row?.b).toBeInstanceOf(Uint8Array);
      expect([...(row?.b as Uint8Array)]).toEqual([1, 2]);
    });

    it('survives the server dropping idle pooled connections', async (ctx) => {
      await ready();
      ctx.skip(db().kind === 'pglite', 'PGlite has no network connections to drop');
      await db().query('select 1');
      const dropped = await db().asOwner((tx) =>
        tx.query(
          `select pg_terminate_backend(pid) from pg_stat_activity
            where usename = $1 and datname = current_database() and pid <> pg_backend_pid()`,
          [APP_ROLE],
        ),
      );
      expect(dropped.rowCount).toBeGreaterThan(0);
      // The idle connections hear about it asynchronously; give the pool a moment to discard them.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect((await db().query<{ one: number }>('select 1 as one')).rows).toEqual([{ one: 1 }]);
    });

    it('answers ping, and refuses work once closed', async () => {
      await ready();
      await db().ping();
      await db().close();
      await expect(db().ping()).rejects.toThrow(/closed/);
      await expect(db().query('select 1')).rejects.toThrow(/closed/);
      await db().close();
    });
  });
}
