/**
 * The keyring against real storage, run on PGlite + memory kv and on PostgreSQL + Redis:
 * sealing bound to its row, every attack on a sealed value refused with its own code, KEK and
 * DEK rotation (resumable, under concurrent writes), the usage bound, crypto-shredding seen by a
 * second node within a second, the sealed-column registry scan, and signing keys.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope, encodeEnvelope } from '../../src/crypto/envelope.ts';
import type { Kek, KekSource } from '../../src/crypto/kek-source.ts';
import { verifyEd25519 } from '../../src/crypto/signing.ts';
import type { SealedColumn } from '../../src/server/route.ts';
import type { Db } from '../../src/store/db-types.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { createKeyring, PLATFORM_TENANT_ID, type Keyring, type KeyringOptions } from '../../src/keyring/keyring.ts';
import { rotateDeks, scanSealedColumns } from '../../src/keyring/reencrypt.ts';
import { createSigningKeys } from '../../src/keyring/signing-keys.ts';

export interface KeyringSuiteEnv {
  db: Db;
  /** Two kv clients on one store: two nodes. */
  kvA: Kv;
  kvB: Kv;
  cleanup: () => Promise<void>;
}

/** A KEK source whose versions the test controls (an operator editing GATEHOUSE_MASTER_KEYS). */
function mutableSource(initial: Kek[]): KekSource & { set: (keys: Kek[]) => void } {
  let keys = initial;
  return {
    name: 'test',
    load: async () => keys.map((k) => ({ version: k.version, key: Buffer.from(k.key) })),
    addVersion: async () => {
      const next = { version: Math.max(...keys.map((k) => k.version)) + 1, key: randomBytes(32) };
      keys = [...keys, next];
      return next;
    },
    set: (k) => {
      keys = k;
    },
  };
}

const NOTES: SealedColumn = { table: 'secret_notes', column: 'body_sealed', idColumn: 'id', tenantColumn: 'tenant_id', subjectColumn: 'user_id' };
const PLATFORM_KEYS: SealedColumn = { table: 'signing_keys', column: 'private_sealed', idColumn: 'kid', tenantColumn: null };

async function sleep(ms: number): Promise<void> {
  await new Promise((r) => setTimeout(r, ms));
}

export function keyringSharedSuite(name: string, makeEnv: () => Promise<KeyringSuiteEnv>): void {
  describe(`keyring on ${name}`, () => {
    let env: KeyringSuiteEnv;
    let source: ReturnType<typeof mutableSource>;
    let keyring: Keyring;
    const tenantA = randomUUID();
    const tenantB = randomUUID();
    const open = (extra: Partial<KeyringOptions> = {}, kv?: Kv): Promise<Keyring> =>
      createKeyring({ db: env.db, kv: kv ?? env.kvA, source, ...extra });

    async function insertNote(tenantId: string, plaintext: string, userId: string | null = null, kr: Keyring = keyring): Promise<string> {
      const id = randomUUID();
      const sealed = await kr.seal({ tenantId, ...(userId ? { subjectId: userId } : {}) }, { table: NOTES.table, column: NOTES.column, rowId: id }, plaintext);
      await env.db.withTenant(tenantId, (tx) =>
        tx.query('insert into secret_notes (id, tenant_id, user_id, body_sealed) values ($1, $2, $3, $4)', [id, tenantId, userId, sealed]),
      );
      return id;
    }

    async function readNote(tenantId: string, id: string, kr: Keyring = keyring): Promise<string> {
      const row = (
        await env.db.withTenant(tenantId, (tx) => tx.query<{ body_sealed: string; user_id: string | null }>('select body_sealed, user_id from secret_notes where id = $1', [id]))
      ).rows[0];
      if (!row) throw new Error('no such note');
      const plain = await kr.open({ tenantId, ...(row.user_id ? { subjectId: row.user_id } : {}) }, { table: NOTES.table, column: NOTES.column, rowId: id }, row.body_sealed);
      return plain.toString('utf8');
    }

    async function codeOf(p: Promise<unknown>): Promise<string> {
      try {
        await p;
        return 'OPENED';
      } catch (err) {
        return (err as { code?: string }).code ?? String(err);
      }
    }

    beforeAll(async () => {
      env = await makeEnv();
      await env.db.migrate();
      await env.db.asOwner(async (tx) => {
        await tx.query("insert into tenants (id, kind) values ($1, 'org'), ($2, 'org')", [tenantA, tenantB]);
        await tx.query(`create table secret_notes (
          id uuid primary key, tenant_id uuid not null references tenants (id), user_id uuid, body_sealed text not null)`);
        await tx.query('create index secret_notes_tenant_idx on secret_notes (tenant_id)');
        await tx.query('alter table secret_notes enable row level security');
        await tx.query('alter table secret_notes force row level security');
        await tx.query(`create policy secret_notes_tenant on secret_notes
          using (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))
          with check (tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid))`);
        await tx.query('grant select, insert, update, delete on secret_notes to gatehouse_app');
      });
      source = mutableSource([{ version: 1, key: randomBytes(32) }]);
      keyring = await open();
    }, 120_000);

    afterAll(async () => {
      await keyring?.close();
      await env?.cleanup();
    });

    it('seals into the versioned envelope and opens in the same row', async () => {
      const id = await insertNote(tenantA, 'sk-vendor-key-for-A');
      expect(await readNote(tenantA, id)).toBe('sk-vendor-key-for-A');
      const row = (await env.db.withTenant(tenantA, (tx) => tx.query<{ body_sealed: string }>('select body_sealed from secret_notes where id = $1', [id]))).rows[0];
      expect(row?.body_sealed).toMatch(/^gh1\.[A-Za-z0-9_-]+$/);
      expect(row?.body_sealed).not.toContain('sk-vendor');
      expect(decodeEnvelope(row?.body_sealed ?? '').header.kekVersion).toBe(1);
    });

    it('attack: a ciphertext copied to another row, column or table fails with DECRYPT_FAILED', async () => {
      const id = await insertNote(tenantA, 'row-bound');
      const sealed = (await env.db.withTenant(tenantA, (tx) => tx.query<{ body_sealed: string }>('select body_sealed from secret_notes where id = $1', [id]))).rows[0]?.body_sealed ?? '';
      const scope = { tenantId: tenantA };
      expect(await codeOf(keyring.open(scope, { table: NOTES.table, column: NOTES.column, rowId: randomUUID() }, sealed))).toBe('DECRYPT_FAILED');
      expect(await codeOf(keyring.open(scope, { table: NOTES.table, column: 'other_column', rowId: id }, sealed))).toBe('DECRYPT_FAILED');
      expect(await codeOf(keyring.open(scope, { table: 'other_table', column: NOTES.column, rowId: id }, sealed))).toBe('DECRYPT_FAILED');
    });

    it("attack: tenant A's ciphertext copied into tenant B fails (B cannot even see A's key: KEY_UNKNOWN)", async () => {
      await insertNote(tenantB, 'b-has-a-key-too');
      const id = await insertNote(tenantA, 'a-secret');
      const sealed = (await env.db.withTenant(tenantA, (tx) => tx.query<{ body_sealed: string }>('select body_sealed from secret_notes where id = $1', [id]))).rows[0]?.body_sealed ?? '';
      expect(await codeOf(keyring.open({ tenantId: tenantB }, { table: NOTES.table, column: NOTES.column, rowId: id }, sealed))).toBe('KEY_UNKNOWN');
    });

    it('attack: tampered, truncated or re-ordered envelopes fail with their own codes and never return plaintext', async () => {
      const id = randomUUID();
      const ref = { table: NOTES.table, column: NOTES.column, rowId: id };
      const sealed = await keyring.seal({ tenantId: tenantA }, ref, 'tamper-target');
      const d = decodeEnvelope(sealed);
      const flipped = Buffer.from(d.sealed);
      flipped[0] = (flipped[0] ?? 0) ^ 0x01;
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, encodeEnvelope(d.header, d.nonce, flipped)))).toBe('DECRYPT_FAILED');
      const tag = Buffer.from(d.sealed);
      tag[tag.length - 1] = (tag[tag.length - 1] ?? 0) ^ 0x80;
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, encodeEnvelope(d.header, d.nonce, tag)))).toBe('DECRYPT_FAILED');
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, sealed.slice(0, 30)))).toBe('ENVELOPE_MALFORMED');
      const reordered = encodeEnvelope(d.header, d.sealed.subarray(0, 12), Buffer.concat([d.nonce, d.sealed.subarray(12)]));
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, reordered))).toBe('DECRYPT_FAILED');
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, encodeEnvelope({ ...d.header, dekId: randomUUID() }, d.nonce, d.sealed)))).toBe('KEY_UNKNOWN');
      // A header rewritten to claim another KEK version is bound by the AAD.
      expect(await codeOf(keyring.open({ tenantId: tenantA }, ref, encodeEnvelope({ ...d.header, kekVersion: 7 }, d.nonce, d.sealed)))).toBe('DECRYPT_FAILED');
    });

    it('personal data sealed under a user key opens only for that user', async () => {
      const user = randomUUID();
      const id = await insertNote(tenantA, 'alice-phone', user);
      expect(await readNote(tenantA, id)).toBe('alice-phone');
      const sealed = (await env.db.withTenant(tenantA, (tx) => tx.query<{ body_sealed: string }>('select body_sealed from secret_notes where id = $1', [id]))).rows[0]?.body_sealed ?? '';
      expect(await codeOf(keyring.open({ tenantId: tenantA }, { table: NOTES.table, column: NOTES.column, rowId: id }, sealed))).toBe('KEY_UNKNOWN');
      expect(await codeOf(keyring.open({ tenantId: tenantA, subjectId: randomUUID() }, { table: NOTES.table, column: NOTES.column, rowId: id }, sealed))).toBe('KEY_UNKNOWN');
    });

    it('a data key is retired and replaced before its usage bound', async () => {
      const tenant = randomUUID();
      await env.db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenant]));
      const small = await open({ dekMaxUses: 5 });
      try {
        const ids: string[] = [];
        for (let i = 0; i < 12; i++) ids.push(await insertNote(tenant, `v${i}`, null, small));
        const deks = (await env.db.withTenant(tenant, (tx) => tx.query<{ state: string; reserved_uses: string }>('select state, reserved_uses from data_keys'))).rows;
        expect(deks.length).toBeGreaterThanOrEqual(3);
        expect(deks.filter((d) => d.state === 'active')).toHaveLength(1);
        for (const d of deks) expect(Number(d.reserved_uses)).toBeLessThanOrEqual(6);
        for (let i = 0; i < ids.length; i++) expect(await readNote(tenant, ids[i] ?? '', small)).toBe(`v${i}`);
      } finally {
        await small.close();
      }
    });

    it('KEK rotation rewraps every DEK; values stay readable with the old KEK removed; a missing KEK is KEK_MISSING', async () => {
      const before = await insertNote(tenantA, 'survives-kek-rotation');
      const v2 = await source.addVersion();
      await keyring.reloadKeks();
      expect(keyring.primaryKekVersion()).toBe(2);
      const dry = await keyring.rewrapAll({ dryRun: true });
      expect(dry).toBeGreaterThan(0);
      const progress: number[] = [];
      const done = await keyring.rewrapAll({ onProgress: (d) => progress.push(d) });
      expect(done).toBe(dry);
      expect(progress.at(-1)).toBe(done);
      const status = await keyring.status();
      expect(status.keks.find((k) => k.version === 1)?.wrapsDeks).toBe(0);
      // The operator may now drop version 1: everything opens with version 2 alone.
      const all = await source.load();
      source.set(all.filter((k) => k.version === 2));
      const fresh = await open();
      try {
        expect(await readNote(tenantA, before, fresh)).toBe('survives-kek-rotation');
      } finally {
        await fresh.close();
      }
      // A keyring that lacks the KEK a DEK is wrapped with cannot open it.
      source.set([{ version: 9, key: randomBytes(32) }]);
      const lacking = await open();
      try {
        expect(await codeOf(readNote(tenantA, before, lacking))).toBe('KEK_MISSING');
      } finally {
        await lacking.close();
        source.set([{ version: 1, key: (all.find((k) => k.version === 1) as Kek).key }, v2]);
      }
    });

    it('DEK rotation re-encrypts as a resumable job under concurrent writes; then old-KEK ciphertext can be refused', async () => {
      const tenant = randomUUID();
      await env.db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenant]));
      await keyring.reloadKeks();
      const ids: string[] = [];
      for (let i = 0; i < 450; i++) ids.push(await insertNote(tenant, `note-${i}`));
      const oldDek = await keyring.activeDekId({ tenantId: tenant });

      // Interrupted after one batch, as a crash would leave it.
      const first = await rotateDeks({ db: env.db, keyring, columns: [NOTES], tenantId: tenant, stopAfterBatches: 1 });
      expect(first.interrupted).toBe(true);
      const newDek = await keyring.activeDekId({ tenantId: tenant });
      expect(newDek).not.toBe(oldDek);
      // Everything is readable mid-rotation, and writes keep going under the new key.
      for (const id of ids.slice(0, 20)) expect((await readNote(tenant, id)).startsWith('note-')).toBe(true);
      const during: string[] = [];
      const writer = (async () => {
        for (let i = 0; i < 30; i++) during.push(await insertNote(tenant, `during-${i}`));
      })();
      const second = await rotateDeks({ db: env.db, keyring, columns: [NOTES], tenantId: tenant });
      await writer;
      expect(second.interrupted).toBe(false);
      expect(first.resealed + second.resealed).toBe(450);
      // A re-run finds nothing left to do for this job and starts a new rotation only if asked.
      const underOld = (await env.db.withTenant(tenant, (tx) => tx.query<{ body_sealed: string }>('select body_sealed from secret_notes'))).rows.filter(
        (r) => decodeEnvelope(r.body_sealed).header.dekId === oldDek,
      );
      expect(underOld).toHaveLength(0);
      for (let i = 0; i < ids.length; i += 37) expect(await readNote(tenant, ids[i] ?? '')).toBe(`note-${i}`);
      for (let i = 0; i < during.length; i++) expect(await readNote(tenant, during[i] ?? '')).toBe(`during-${i}`);

      // Values sealed while KEK 1 was primary are refused once the minimum is raised past it.
      const strict = await open({ minDecryptKekVersion: 3 });
      try {
        expect(await codeOf(readNote(tenant, ids[0] ?? '', strict))).toBe('KEY_RETIRED');
      } finally {
        await strict.close();
      }
    }, 120_000);

    it('the registry scan finds every sealed column valid, and flags a plaintext value', async () => {
      const signing = await createSigningKeys({ db: env.db, kv: env.kvA, keyring });
      await signing.ensure();
      await signing.close();
      expect(await scanSealedColumns(env.db, keyring, [NOTES, PLATFORM_KEYS])).toEqual([]);
      const bad = randomUUID();
      await env.db.withTenant(tenantA, (tx) => tx.query('insert into secret_notes (id, tenant_id, body_sealed) values ($1, $2, $3)', [bad, tenantA, 'sk-plaintext-leak']));
      expect(await scanSealedColumns(env.db, keyring, [NOTES])).toEqual([`secret_notes.body_sealed row ${bad}: ENVELOPE_MALFORMED`]);
      await env.db.withTenant(tenantA, (tx) => tx.query('delete from secret_notes where id = $1', [bad]));
    });

    it('signing keys: JWKS publishes next before it signs; rotation keeps the previous key verifiable', async () => {
      const signing = await createSigningKeys({ db: env.db, kv: env.kvA, keyring });
      try {
        await signing.ensure();
        const before = await signing.current('access-token');
        const jwks1 = await signing.jwks();
        const listed = await signing.list();
        const next = listed.find((k) => k.purpose === 'access-token' && k.state === 'next');
        expect(next).toBeDefined();
        expect(jwks1.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([before.kid, next?.kid]));
        const data = Buffer.from('header.payload');
        const sig = before.sign(data);
        const rotated = await signing.rotate('access-token');
        expect(rotated.activated).toBe(next?.kid);
        const after = await signing.current('access-token');
        expect(after.kid).toBe(next?.kid);
        const jwks2 = await signing.jwks();
        const prevJwk = jwks2.keys.find((k) => k.kid === before.kid);
        expect(prevJwk).toBeDefined();
        expect(verifyEd25519(prevJwk as NonNullable<typeof prevJwk>, data, sig)).toBe(true);
        expect(jwks2.keys.map((k) => k.kid)).toContain(rotated.published);
        // The private halves are stored sealed, never as key material.
        const rows = (await env.db.query<{ private_sealed: string }>('select private_sealed from signing_keys')).rows;
        for (const r of rows) expect(r.private_sealed).toMatch(/^gh1\./);
      } finally {
        await signing.close();
      }
    });

    it('crypto-shredding: KEY_DESTROYED on every node within a second; other tenants and users unaffected; a copy of the sealed values without data_keys stays unreadable', async () => {
      const tenant = randomUUID();
      await env.db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenant]));
      const user = randomUUID();
      const keep = await insertNote(tenant, 'tenant-secret');
      const personal = await insertNote(tenant, 'user-secret', user);
      const other = await insertNote(tenantB, 'other-tenant');
      // Node B reads first, so it holds the unwrapped DEKs in its cache.
      const nodeB = await createKeyring({ db: env.db, kv: env.kvB, source });
      try {
        expect(await readNote(tenant, keep, nodeB)).toBe('tenant-secret');
        expect(await readNote(tenant, personal, nodeB)).toBe('user-secret');
        // A copy of the sealed values taken before shredding, without data_keys (a copy that
        // holds data_keys is not protected by shredding: see the note in keyring.ts).
        const backup = (await env.db.withTenant(tenant, (tx) => tx.query<{ id: string; user_id: string | null; body_sealed: string }>('select * from secret_notes'))).rows;

        // Shred one user's personal data first.
        expect(await keyring.destroyKeys({ tenantId: tenant, subjectId: user })).toBe(1);
        const t0 = Date.now();
        let code = 'OPENED';
        while (Date.now() - t0 < 1000) {
          code = await codeOf(readNote(tenant, personal, nodeB));
          if (code === 'KEY_DESTROYED') break;
          await sleep(20);
        }
        expect(code).toBe('KEY_DESTROYED');
        expect(await readNote(tenant, keep, nodeB)).toBe('tenant-secret');

        // Then the whole tenant.
        await keyring.destroyKeys({ tenantId: tenant });
        const t1 = Date.now();
        code = 'OPENED';
        while (Date.now() - t1 < 1000) {
          code = await codeOf(readNote(tenant, keep, nodeB));
          if (code === 'KEY_DESTROYED') break;
          await sleep(20);
        }
        expect(code).toBe('KEY_DESTROYED');
        expect(await readNote(tenantB, other, nodeB)).toBe('other-tenant');
        // Restored from that copy, the values still cannot be opened.
        for (const row of backup) {
          const scope = { tenantId: tenant, ...(row.user_id ? { subjectId: row.user_id } : {}) };
          expect(await codeOf(keyring.open(scope, { table: NOTES.table, column: NOTES.column, rowId: row.id }, row.body_sealed))).toBe('KEY_DESTROYED');
        }
        // The key material itself is gone from the database.
        const wrapped = (await env.db.withTenant(tenant, (tx) => tx.query<{ wrapped: string | null }>('select wrapped from data_keys'))).rows;
        expect(wrapped.every((r) => r.wrapped === null)).toBe(true);
      } finally {
        await nodeB.close();
      }
    });

    it('the platform key seals platform secrets under the platform tenant', async () => {
      const id = randomUUID();
      const sealed = await keyring.seal({ tenantId: PLATFORM_TENANT_ID }, { table: 't', column: 'c', rowId: id }, 'platform');
      expect((await keyring.open({ tenantId: PLATFORM_TENANT_ID }, { table: 't', column: 'c', rowId: id }, sealed)).toString()).toBe('platform');
    });

  });
}
