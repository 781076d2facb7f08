import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createScratchPostgresDatabase } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';
import { dbSharedSuite } from './suites/db.shared-suite.ts';
import { createDb } from '../../src/store/index.ts';
import { loadMigrations } from '../../src/store/migrate.ts';
import { createPgliteDb } from '../../src/store/pglite.ts';
import { createPostgresDb } from '../../src/store/postgres.ts';

dbSharedSuite('PGlite (in memory)', async () => {
  const db = await createPgliteDb({ dataDir: undefined });
  return { db, cleanup: () => db.close() };
});

const postgres = postgresTarget();
if (postgres.skipReason) {
  console.warn(postgres.skipReason);
  describe.skip(`PostgreSQL: ${postgres.skipReason}`, () => {
    it('runs the shared storage suite', () => undefined);
  });
} else {
  // In CI without DATABASE_URL requireUrl throws in beforeAll, failing every test of the suite.
  dbSharedSuite('PostgreSQL', async () => {
    const scratch = await createScratchPostgresDatabase(requireUrl(postgres));
    const open = () => createPostgresDb({ url: scratch.url, poolSize: 4 });
    const db = await open();
    return {
      db,
      openAnother: open,
      cleanup: async () => {
        await db.close();
        await scratch.drop();
      },
    };
  });
}

describe('PGlite on disk', () => {
  it('keeps data across close and reopen, and does not migrate twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-pglite-'));
    try {
      const first = await createDb({ dataDir: dir });
      expect(first.kind).toBe('pglite');
      expect(first.location).toBe(dir);
      expect((await first.migrate()).applied.length).toBeGreaterThan(0);
      const id = randomUUID();
      await first.query("insert into tenants (id, kind) values ($1, 'platform')", [id]);
      await first.close();

      const second = await createDb({ dataDir: dir });
      try {
        expect((await second.migrate()).applied).toEqual([]);
        expect((await second.query('select kind from tenants where id = $1', [id])).rows).toEqual([{ kind: 'platform' }]);
      } finally {
        await second.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('migration files', () => {
  it('each open with a -- why: comment', async () => {
    const migrations = await loadMigrations();
    expect(migrations.length).toBeGreaterThan(0);
    for (const m of migrations) expect(m.sql.startsWith('-- why:'), m.name).toBe(true);
  });

  it('load in filename order, ignore line endings in the checksum, and reject unordered names', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'gatehouse-migrations-'));
    try {
      await writeFile(join(dir, '20270101T0000_b.sql'), '-- why: b\nselect 2;\n');
      await writeFile(join(dir, '20261231T2359_a.sql'), '-- why: a\r\nselect 1;\r\n');
      await writeFile(join(dir, 'notes.txt'), 'not a migration');
      const loaded = await loadMigrations(dir);
      expect(loaded.map((m) => m.name)).toEqual(['20261231T2359_a.sql', '20270101T0000_b.sql']);
      await writeFile(join(dir, '20261231T2359_a.sql'), '-- why: a\nselect 1;\n');
      expect((await loadMigrations(dir))[0]?.checksum).toBe(loaded[0]?.checksum);
      await writeFile(join(dir, 'add_users.sql'), 'select 3;');
      await expect(loadMigrations(dir)).rejects.toThrow(/add_users\.sql/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('PostgreSQL adapter without a server', () => {
  it('prints its location without credentials and needs migrate() before queries', async () => {
    const db = await createPostgresDb({ url: 'postgres://owner:s3cret@127.0.0.1:1/gatehouse?password=s3cret' }); // secret-scan: fake
    try {
      expect(db.kind).toBe('postgres');
      expect(db.location).toBe('postgres://owner@127.0.0.1:1/gatehouse');
      await expect(db.query('select 1')).rejects.toThrow(/migrate\(\)/);
    } finally {
      await db.close();
    }
  });

  it('asks for appUrl when the database URL has no host to derive it from', async () => {
    await expect(createPostgresDb({ url: 'postgres:///gatehouse?host=/var/run/postgresql' })).rejects.toThrow(/appUrl/);
    const db = await createPostgresDb({
      url: 'postgres:///gatehouse?host=/var/run/postgresql',
      appUrl: 'postgres://gatehouse_app@localhost/gatehouse',
    });
    await db.close();
  });
});
