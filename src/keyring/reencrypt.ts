/**
 * DEK rotation with re-encryption as a resumable job (DATA-2): a new active DEK per scope, then
 * every sealed value still under the old DEK is re-sealed in batches. Progress is recorded per
 * column after each batch, and each row is swapped only if it still holds the value read
 * (compare-and-set), so the job is safe to interrupt, to re-run, and to run while the server
 * writes: a concurrent writer already seals under the new key.
 */
import { randomUUID } from 'node:crypto';
import { decodeEnvelope } from '../crypto/envelope.ts';
import type { SealedColumn } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { PLATFORM_TENANT_ID, type Keyring, type KeyScope } from './keyring.ts';

const IDENT = /^[a-z_][a-z0-9_]*$/;
const BATCH = 200;

function ident(name: string): string {
  if (!IDENT.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  return `"${name}"`;
}

export interface RotateDekOptions {
  db: Db;
  keyring: Keyring;
  columns: readonly SealedColumn[];
  /** One tenant, or every tenant when absent. */
  tenantId?: string;
  dryRun?: boolean;
  onProgress?: (event: { tenantId: string; column: string; done: number }) => void;
  /** Tests: stop after this many batches, as a crash would. */
  stopAfterBatches?: number;
}

export interface RotateDekResult {
  tenants: number;
  jobs: number;
  resealed: number;
  /** Values that would be re-sealed (dry run). */
  pending: number;
  interrupted: boolean;
}

interface JobRow {
  id: string;
  from_dek: string;
  to_dek: string;
  progress: Record<string, string> | string;
}

/**
 * The columns that can hold a tenant's values: every tenant-keyed column (the platform tenant has
 * rows there too, e.g. platform webhook endpoints), and for the platform also its own columns.
 */
function columnsFor(columns: readonly SealedColumn[], tenantId: string): SealedColumn[] {
  return columns.filter((c) => c.tenantColumn !== null || tenantId === PLATFORM_TENANT_ID);
}

async function countUnder(db: Db, tenantId: string, col: SealedColumn, dekId: string): Promise<number> {
  const where = col.tenantColumn ? `where ${ident(col.tenantColumn)} = $1` : '';
  const r = await db.withTenant(tenantId, (tx) =>
    tx.query<{ v: string }>(`select ${ident(col.column)} as v from ${ident(col.table)} ${where}`, col.tenantColumn ? [tenantId] : []),
  );
  return r.rows.filter((row) => row.v && decodeEnvelope(row.v).header.dekId === dekId).length;
}

/** Rotates the DEKs of one tenant or all, re-encrypting their sealed values; resumes unfinished jobs first. */
export async function rotateDeks(options: RotateDekOptions): Promise<RotateDekResult> {
  const { db, keyring } = options;
  const tenants = options.tenantId
    ? [options.tenantId]
    : (await db.query<{ id: string }>('select id from tenants order by id')).rows.map((r) => r.id);
  const result: RotateDekResult = { tenants: 0, jobs: 0, resealed: 0, pending: 0, interrupted: false };
  let batches = 0;

  for (const tenantId of tenants) {
    const columns = columnsFor(options.columns, tenantId);
    const activeDeks = await db.withTenant(tenantId, (tx) =>
      tx.query<{ id: string; subject_id: string | null }>("select id, subject_id from data_keys where state = 'active'"),
    );
    if (options.dryRun) {
      for (const dek of activeDeks.rows) for (const col of columns) result.pending += await countUnder(db, tenantId, col, dek.id);
      result.tenants++;
      continue;
    }
    let jobs = (
      await db.withTenant(tenantId, (tx) => tx.query<JobRow>("select id, from_dek, to_dek, progress from key_jobs where state = 'running' order by created_at"))
    ).rows;
    if (jobs.length === 0) {
      // Start new jobs: one per active DEK of the tenant (its own and each user's).
      for (const dek of activeDeks.rows) {
        const scope: KeyScope = { tenantId, ...(dek.subject_id ? { subjectId: dek.subject_id } : {}) };
        const { to } = await keyring.replaceActiveDek(scope);
        await db.withTenant(tenantId, (tx) =>
          tx.query("insert into key_jobs (id, tenant_id, kind, from_dek, to_dek, state) values ($1, $2, 'rotate-dek', $3, $4, 'running')", [
            randomUUID(),
            tenantId,
            dek.id,
            to,
          ]),
        );
      }
      jobs = (await db.withTenant(tenantId, (tx) => tx.query<JobRow>("select id, from_dek, to_dek, progress from key_jobs where state = 'running' order by created_at"))).rows;
    }
    result.tenants++;
    for (const job of jobs) {
      result.jobs++;
      const progress: Record<string, string> = typeof job.progress === 'string' ? (JSON.parse(job.progress) as Record<string, string>) : { ...job.progress };
      for (const col of columns) {
        const key = `${col.table}.${col.column}`;
        if (progress[`${key}#done`] === 'yes') continue;
        for (;;) {
          if (options.stopAfterBatches !== undefined && batches >= options.stopAfterBatches) {
            result.interrupted = true;
            return result;
          }
          const cursor = progress[key] ?? '';
          const params: unknown[] = [cursor, BATCH];
          let where = `${ident(col.idColumn)}::text > $1`;
          if (col.tenantColumn) {
            params.push(tenantId);
            where += ` and ${ident(col.tenantColumn)} = $3`;
          }
          const subjectSel = col.subjectColumn ? `, ${ident(col.subjectColumn)}::text as subject` : ', null as subject';
          const rows = (
            await db.withTenant(tenantId, (tx) =>
              tx.query<{ id: string; v: string | null; subject: string | null }>(
                `select ${ident(col.idColumn)}::text as id, ${ident(col.column)} as v${subjectSel} from ${ident(col.table)} where ${where} order by ${ident(col.idColumn)}::text limit $2`,
                params,
              ),
            )
          ).rows;
          if (rows.length === 0) {
            progress[`${key}#done`] = 'yes';
            await db.withTenant(tenantId, (tx) => tx.query('update key_jobs set progress = $2, updated_at = now() where id = $1', [job.id, JSON.stringify(progress)]));
            break;
          }
          const swaps: { id: string; from: string; to: string }[] = [];
          for (const row of rows) {
            if (!row.v || decodeEnvelope(row.v).header.dekId !== job.from_dek) continue;
            const scope: KeyScope = { tenantId, ...(row.subject ? { subjectId: row.subject } : {}) };
            const ref = { table: col.table, column: col.column, rowId: row.id };
            const plain = await keyring.open(scope, ref, row.v);
            swaps.push({ id: row.id, from: row.v, to: await keyring.seal(scope, ref, plain) });
            plain.fill(0);
          }
          const last = rows[rows.length - 1]?.id ?? cursor;
          progress[key] = last;
          const swapped = await db.withTenant(tenantId, async (tx) => {
            let n = 0;
            for (const s of swaps) {
              const r = await tx.query(
                `update ${ident(col.table)} set ${ident(col.column)} = $3 where ${ident(col.idColumn)}::text = $1 and ${ident(col.column)} = $2`,
                [s.id, s.from, s.to],
              );
              n += r.rowCount;
            }
            await tx.query('update key_jobs set progress = $2, done_count = done_count + $3, updated_at = now() where id = $1', [job.id, JSON.stringify(progress), n]);
            return n;
          });
          result.resealed += swapped;
          batches++;
          options.onProgress?.({ tenantId, column: key, done: result.resealed });
        }
      }
      await db.withTenant(tenantId, (tx) => tx.query("update key_jobs set state = 'done', updated_at = now() where id = $1", [job.id]));
    }
  }
  return result;
}

/** Every sealed value that is not a valid envelope or does not open in its own row: the registry scan. */
export async function scanSealedColumns(db: Db, keyring: Keyring, columns: readonly SealedColumn[]): Promise<string[]> {
  const problems: string[] = [];
  const tenants = (await db.query<{ id: string }>('select id from tenants order by id')).rows.map((r) => r.id);
  for (const tenantId of tenants) {
    for (const col of columnsFor(columns, tenantId)) {
      const subjectSel = col.subjectColumn ? `, ${ident(col.subjectColumn)}::text as subject` : ', null as subject';
      const where = col.tenantColumn ? `where ${ident(col.tenantColumn)} = $1` : '';
      const rows = (
        await db.withTenant(tenantId, (tx) =>
          tx.query<{ id: string; v: unknown; subject: string | null }>(
            `select ${ident(col.idColumn)}::text as id, ${ident(col.column)} as v${subjectSel} from ${ident(col.table)} ${where}`,
            col.tenantColumn ? [tenantId] : [],
          ),
        )
      ).rows;
      for (const row of rows) {
        if (row.v === null) continue;
        const at = `${col.table}.${col.column} row ${row.id}`;
        if (typeof row.v !== 'string') {
          problems.push(`${at}: not a string`);
          continue;
        }
        try {
          await keyring.open({ tenantId, ...(row.subject ? { subjectId: row.subject } : {}) }, { table: col.table, column: col.column, rowId: row.id }, row.v);
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'ERROR';
          // A destroyed key is the intended state after shredding, not a broken value.
          if (code !== 'KEY_DESTROYED') problems.push(`${at}: ${code}`);
        }
      }
    }
  }
  return problems;
}
