/**
 * RLS benchmark: what row-level security costs on a tenant-scoped list query, compared with the
 * same query run with RLS off and an explicit tenant filter.
 *
 *   npm run bench:rls                                                  (PGlite only)
 *   DATABASE_URL=postgres://postgres@127.0.0.1:5432/test npm run bench:rls   (PGlite, then PostgreSQL)
 *
 * Per engine (in-memory PGlite always; PostgreSQL only with DATABASE_URL, on a scratch database
 * that is dropped at the end, also on failure):
 *
 * - `db.migrate()` (the application role and its grants), then as the owner a table shaped like a
 *   real tenant table: `bench_items(id uuid pk, tenant_id uuid, name text, created_at timestamptz)`,
 *   RLS enabled and forced, the migrations' policy
 *   `tenant_id = (select nullif(current_setting('gatehouse.tenant_id', true), '')::uuid)` (using and
 *   with check), select/insert/update/delete granted to the app role. 1,000 tenants x 100 rows
 *   are loaded by one `insert ... select` over two generate_series, in time order (the tenants
 *   interleaved, as rows arrive in a real deployment, so one tenant's rows are spread over the
 *   heap); then the index on (tenant_id, created_at) is built and the table analyzed. Tenant ids
 *   are deterministic: md5('bench-tenant-<n>')::uuid.
 * - RLS on: `db.withTenant(t, tx => tx.query(LIST))`, the app role with the tenant set by
 *   set_config(..., true), LIST = `select id, name, created_at from bench_items order by
 *   created_at desc limit 100`.
 * - RLS off (baseline): `db.asOwner(tx => tx.query(LIST + where tenant_id = $1))`. The owner must
 *   bypass RLS (superuser or BYPASSRLS; PGlite's session user is a superuser). That is checked
 *   and printed, and proved once with `SET LOCAL row_security = off`, under which a query that
 *   RLS would filter raises an error instead. For an owner that cannot bypass RLS the table is
 *   created without FORCE (the table owner is then exempt, and could not even load the rows of a
 *   forced table; the app role is filtered exactly the same), and the output says so.
 *
 * Checks (exit 1 when one fails): 1,000 tenants; inside withTenant `count(*)` is 100, as the
 * owner 100,000; both variants return the same 100 ids in the same order for a sample of tenants;
 * every timed call returns exactly 100 rows.
 *
 * Timing: a warm-up round of each variant (discarded), then BENCH_ROUNDS rounds of BENCH_QUERIES
 * calls per variant, all variants over the same seeded random tenant sequence, the variant that
 * goes first rotating per round. A third, reference variant is the baseline plus one
 * `select set_config('gatehouse.tenant_id', $1, true)` round trip before the query: the same
 * number of statements as withTenant, RLS still off, so RLS/reference shows what the policy
 * itself costs per call and reference/baseline what the tenant context's round trip costs.
 * Two figures per call: the whole call (BEGIN, on the RLS side the set_config of the tenant
 * (PGlite: and of the role), the query, COMMIT), which is what request code pays, and the list
 * statement alone, timed inside the callback. Mean, p50 and p95 of each, and the ratios of the
 * means and of the p50s. The target (per-call mean ratio RLS/baseline <= 1.3) is printed as met
 * or not met and does not change the exit code. EXPLAIN (ANALYZE, BUFFERS) of both variants is
 * printed once per engine.
 *
 * Knobs (environment): BENCH_ROUNDS (default 5), BENCH_QUERIES (calls per variant per round,
 * default 400). Defaults take about 20 s with both engines. Exit 2 past the deadline (150 s).
 */
import { performance } from 'node:perf_hooks';
import { cpus } from 'node:os';
import type { Db, Queryable } from '../src/store/db-types.ts';
import { APP_ROLE, TENANT_SETTING } from '../src/store/db-types.ts';
import { createPgliteDb } from '../src/store/pglite.ts';
import { createPostgresDb } from '../src/store/postgres.ts';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';

const TENANTS = 1000;
const ROWS_PER_TENANT = 100;
const TOTAL_ROWS = TENANTS * ROWS_PER_TENANT;
const TARGET_RATIO = 1.3;
const SAMPLE_TENANTS = 20;
const DEADLINE_MS = 150_000;

function envInt(name: string, fallback: number, max: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0 || n > max) throw new Error(`${name} must be an integer in [1, ${max}], got "${raw}"`);
  return n;
}

const ROUNDS = envInt('BENCH_ROUNDS', 5, 100);
const QUERIES = envInt('BENCH_QUERIES', 400, 100_000);

const POLICY = `tenant_id = (select nullif(current_setting('${TENANT_SETTING}', true), '')::uuid)`;
const LIST_RLS = 'select id, name, created_at from bench_items order by created_at desc limit 100';
const LIST_OWNER = 'select id, name, created_at from bench_items where tenant_id = $1 order by created_at desc limit 100';

/** Registered by the engine that is running, so the deadline can still drop a scratch database. */
let cleanup: (() => Promise<void>) | undefined;
const deadline = setTimeout(() => {
  console.error(`FAILED: the benchmark did not finish within ${DEADLINE_MS / 1000} s`);
  const stop = new Promise((resolve) => setTimeout(resolve, 10_000).unref());
  void Promise.race([cleanup?.().catch(() => undefined), stop]).finally(() => process.exit(2));
}, DEADLINE_MS);

class CheckFailed extends Error {}

function check(condition: boolean, message: string): asserts condition {
  if (!condition) throw new CheckFailed(message);
}

interface Series {
  /** Whole call, ms. */
  call: number[];
  /** The list statement alone, ms. */
  statement: number[];
}

interface Stats {
  mean: number;
  p50: number;
  p95: number;
}

function stats(values: readonly number[]): Stats {
  const sorted = [...values].sort((a, b) => a - b);
  const rank = (q: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? NaN;
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, p50: rank(0.5), p95: rank(0.95) };
}

/** mulberry32: a small seeded generator, so every run (and both variants) query the same tenants. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const ms = (n: number): string => n.toFixed(3);
const seconds = (n: number): string => (n / 1000).toFixed(2);

interface ListRow {
  id: string;
  name: string;
  created_at: unknown;
}

interface OwnerInfo {
  name: string;
  superuser: boolean;
  bypassrls: boolean;
  /** How the baseline gets RLS off. */
  mode: 'bypass' | 'no-force';
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const value = await fn();
  return [value, performance.now() - t0];
}

async function setUp(db: Db): Promise<{ tenants: string[]; owner: OwnerInfo }> {
  const [, migrateMs] = await timed(() => db.migrate());
  const role = await db.asOwner((tx) =>
    tx.query<{ name: string; rolsuper: boolean; rolbypassrls: boolean }>(
      'select current_user as name, rolsuper, rolbypassrls from pg_roles where rolname = current_user',
    ),
  );
  const r = role.rows[0];
  check(r !== undefined, 'the owner role is not in pg_roles');
  // An owner that cannot bypass RLS is exempt from it only on a table that does not force it
  // (and could not even load the rows of a forced one); the app role is filtered either way.
  const owner: OwnerInfo = {
    name: r.name,
    superuser: r.rolsuper,
    bypassrls: r.rolbypassrls,
    mode: r.rolsuper || r.rolbypassrls ? 'bypass' : 'no-force',
  };
  const load = await db.asOwner(async (tx) => {
    await tx.query(`create table bench_items (
      id uuid primary key,
      tenant_id uuid not null,
      name text not null,
      created_at timestamptz not null default now()
    )`);
    await tx.query('alter table bench_items enable row level security');
    if (owner.mode === 'bypass') await tx.query('alter table bench_items force row level security');
    await tx.query(`create policy bench_items_tenant on bench_items using (${POLICY}) with check (${POLICY})`);
    await tx.query(`grant select, insert, update, delete on bench_items to ${APP_ROLE}`);
    // Time order, tenants interleaved: row n of every tenant before row n+1 of any.
    const [inserted, insertMs] = await timed(() =>
      tx.query(
        `insert into bench_items (id, tenant_id, name, created_at)
         select gen_random_uuid(),
                md5('bench-tenant-' || t)::uuid,
                'item ' || i || ' of tenant ' || t,
                timestamptz '2026-01-01 00:00:00+00' + ((i - 1) * $2::int + t) * interval '1 second'
           from generate_series(1, $1::int) as i, generate_series(1, $2::int) as t
          order by i, t`,
        [ROWS_PER_TENANT, TENANTS],
      ),
    );
    check(inserted.rowCount === TOTAL_ROWS, `inserted ${inserted.rowCount} rows, expected ${TOTAL_ROWS}`);
    const [, indexMs] = await timed(() => tx.query('create index bench_items_tenant_created on bench_items (tenant_id, created_at)'));
    const [, analyzeMs] = await timed(() => tx.query('analyze bench_items'));
    return { insertMs, indexMs, analyzeMs };
  });
  console.log(
    `  migrate ${seconds(migrateMs)} s; load of ${TOTAL_ROWS.toLocaleString('en-US')} rows: insert ${seconds(load.insertMs)} s, ` +
      `index ${seconds(load.indexMs)} s, analyze ${seconds(load.analyzeMs)} s ` +
      `(total ${seconds(load.insertMs + load.indexMs + load.analyzeMs)} s)`,
  );
  console.log(
    `  owner: ${owner.name} (superuser: ${owner.superuser ? 'yes' : 'no'}, bypassrls: ${owner.bypassrls ? 'yes' : 'no'}) -> ` +
      (owner.mode === 'bypass'
        ? 'the baseline runs with RLS off (the owner bypasses RLS)'
        : 'the owner cannot bypass RLS: bench_items is created without FORCE ROW LEVEL SECURITY so that the baseline runs with RLS off (the app role is filtered all the same)'),
  );

  const tenants = (
    await db.asOwner((tx) => tx.query<{ t: string }>('select distinct tenant_id::text as t from bench_items order by 1'))
  ).rows.map((row) => row.t);
  check(tenants.length === TENANTS, `found ${tenants.length} tenants, expected ${TENANTS}`);
  return { tenants, owner };
}

async function verify(db: Db, tenants: readonly string[]): Promise<void> {
  // Proof that the baseline really runs with RLS off: under row_security = off a query that RLS
  // would filter raises an error instead of returning filtered rows.
  const ownerCount = await db.asOwner(async (tx) => {
    await tx.query("select set_config('row_security', 'off', true)");
    const count = await tx.query<{ n: number }>('select count(*)::int as n from bench_items');
    await tx.query(LIST_OWNER, [tenants[0]]);
    return count.rows[0]?.n;
  });
  check(ownerCount === TOTAL_ROWS, `as the owner count(*) is ${ownerCount}, expected ${TOTAL_ROWS}`);
  console.log(`  checked: the owner sees ${TOTAL_ROWS.toLocaleString('en-US')} rows with row_security = off (RLS not applied to it)`);

  const random = seededRandom(7);
  for (let i = 0; i < SAMPLE_TENANTS; i++) {
    const t = tenants[Math.floor(random() * tenants.length)] ?? '';
    const [count, rls] = await db.withTenant(t, async (tx) => [
      (await tx.query<{ n: number }>('select count(*)::int as n from bench_items')).rows[0]?.n,
      (await tx.query<ListRow>(LIST_RLS)).rows,
    ] as const);
    check(count === ROWS_PER_TENANT, `inside withTenant count(*) is ${count}, expected ${ROWS_PER_TENANT}: RLS is not in effect`);
    const base = (await db.asOwner((tx) => tx.query<ListRow>(LIST_OWNER, [t]))).rows;
    check(rls.length === ROWS_PER_TENANT && base.length === ROWS_PER_TENANT, `tenant ${t}: ${rls.length} rows with RLS, ${base.length} without`);
    check(
      rls.every((row, k) => row.id === base[k]?.id),
      `tenant ${t}: the two variants returned different rows or a different order`,
    );
  }
  console.log(
    `  checked: inside withTenant count(*) = ${ROWS_PER_TENANT} (not ${TOTAL_ROWS.toLocaleString('en-US')}); ` +
      `both variants return the same ${ROWS_PER_TENANT} ids in the same order (${SAMPLE_TENANTS} tenants)`,
  );
}

async function explain(db: Db, tenant: string): Promise<void> {
  const prefix = 'explain (analyze, buffers, costs off, timing off, summary off) ';
  const plans = {
    'RLS on (withTenant)': (await db.withTenant(tenant, (tx) => tx.query<Record<string, string>>(prefix + LIST_RLS))).rows,
    'RLS off (owner, where tenant_id = $1)': (await db.asOwner((tx) => tx.query<Record<string, string>>(prefix + LIST_OWNER, [tenant]))).rows,
  };
  for (const [label, rows] of Object.entries(plans)) {
    const lines = rows.map((row) => row['QUERY PLAN'] ?? Object.values(row)[0] ?? '');
    const text = lines.join('\n');
    // 'Bitmap Index Scan on <index>', or 'Index [Only] Scan [Backward] using <index> on <table>'.
    const match = /(Bitmap Index Scan) on bench_items_tenant_created|(Index (?:Only )?Scan(?: Backward)?) using bench_items_tenant_created/.exec(text);
    const scan = match?.[1] ?? match?.[2];
    const indexed = scan !== undefined && /Index Cond: \(tenant_id = /.test(text);
    console.log(
      `  plan, ${label}: ` +
        (indexed ? `${scan} on bench_items_tenant_created, the tenant in the index condition` : 'NO index scan with the tenant in the index condition'),
    );
    for (const line of lines) console.log(`    ${line}`);
  }
}

type Variant = 'rls' | 'base' | 'ref';
const VARIANTS: readonly Variant[] = ['rls', 'base', 'ref'];

async function call(db: Db, variant: Variant, tenant: string, into: Series): Promise<void> {
  let statement = 0;
  const list = async (tx: Queryable, sql: string, params?: readonly unknown[]): Promise<ListRow[]> => {
    const s0 = performance.now();
    const result = await tx.query<ListRow>(sql, params);
    statement = performance.now() - s0;
    return result.rows;
  };
  const t0 = performance.now();
  const rows =
    variant === 'rls'
      ? await db.withTenant(tenant, (tx) => list(tx, LIST_RLS))
      : await db.asOwner(async (tx) => {
          // The reference pays the round trip withTenant spends on the tenant context, and nothing else.
          if (variant === 'ref') await tx.query('select set_config($1, $2, true)', [TENANT_SETTING, tenant]);
          return list(tx, LIST_OWNER, [tenant]);
        });
  const elapsed = performance.now() - t0;
  check(rows.length === ROWS_PER_TENANT, `${variant} for tenant ${tenant}: ${rows.length} rows, expected ${ROWS_PER_TENANT}`);
  into.call.push(elapsed);
  into.statement.push(statement);
}

async function measure(db: Db, tenants: readonly string[]): Promise<Record<Variant, Series>> {
  const random = seededRandom(2026);
  const pick = (): string[] => Array.from({ length: QUERIES }, () => tenants[Math.floor(random() * tenants.length)] ?? '');
  const series = (): Series => ({ call: [], statement: [] });
  const discard = { rls: series(), base: series(), ref: series() };
  const kept = { rls: series(), base: series(), ref: series() };
  const warmup = pick();
  for (const variant of VARIANTS) for (const t of warmup) await call(db, variant, t, discard[variant]);
  for (let round = 0; round < ROUNDS; round++) {
    const sequence = pick();
    // The variant that goes first rotates per round, so drift in the machine hits all of them.
    const order = VARIANTS.map((_, k) => VARIANTS[(k + round) % VARIANTS.length] ?? 'rls');
    for (const variant of order) for (const t of sequence) await call(db, variant, t, kept[variant]);
  }
  return kept;
}

type Figures = Record<Variant, Stats>;

interface EngineResult {
  engine: string;
  call: Figures;
  statement: Figures;
}

const LABELS: Record<Variant, string> = {
  rls: 'RLS on  (withTenant)             ',
  base: 'RLS off (owner, where tenant)    ',
  ref: '  reference: RLS off + set_config',
};

function report(engine: string, result: Record<Variant, Series>): EngineResult {
  const figures = (pick: (s: Series) => number[]): Figures => ({
    rls: stats(pick(result.rls)),
    base: stats(pick(result.base)),
    ref: stats(pick(result.ref)),
  });
  const out: EngineResult = { engine, call: figures((s) => s.call), statement: figures((s) => s.statement) };
  const n = result.rls.call.length;
  for (const [title, f] of [
    [`per call (${n} per variant; the whole transaction, as request code pays it)`, out.call],
    ['list statement alone (timed inside the transaction)', out.statement],
  ] as const) {
    console.log(`  ${title}, ms:`);
    for (const v of VARIANTS) console.log(`    ${LABELS[v]} mean ${ms(f[v].mean)}  p50 ${ms(f[v].p50)}  p95 ${ms(f[v].p95)}`);
    console.log(`    ratio RLS/baseline: mean ${(f.rls.mean / f.base.mean).toFixed(2)}, p50 ${(f.rls.p50 / f.base.p50).toFixed(2)}`);
    console.log(`    ratio RLS/reference (same round trips): mean ${(f.rls.mean / f.ref.mean).toFixed(2)}, p50 ${(f.rls.p50 / f.ref.p50).toFixed(2)}`);
  }
  const ratio = out.call.rls.mean / out.call.base.mean;
  console.log(`  target: mean ratio per call ${ratio.toFixed(2)} <= ${TARGET_RATIO}: ${ratio <= TARGET_RATIO ? 'met' : 'NOT met'}`);
  return out;
}

async function runEngine(engine: string, db: Db): Promise<EngineResult> {
  console.log(`${engine} (${db.location})`);
  const t0 = performance.now();
  const { tenants } = await setUp(db);
  await verify(db, tenants);
  await explain(db, tenants[0] ?? '');
  const result = report(engine, await measure(db, tenants));
  console.log(`  engine total ${seconds(performance.now() - t0)} s`);
  return result;
}

async function main(): Promise<EngineResult[]> {
  const results: EngineResult[] = [];
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  console.log(
    `RLS benchmark: ${TENANTS.toLocaleString('en-US')} tenants x ${ROWS_PER_TENANT} rows, ${ROUNDS} rounds x ${QUERIES} calls per variant; ` +
      `Node ${process.version}, ${cpus().length} x ${cpu}`,
  );

  const lite = await createPgliteDb({ dataDir: undefined });
  cleanup = () => lite.close();
  try {
    const version = (await lite.asOwner((tx) => tx.query<{ v: string }>("select current_setting('server_version') as v"))).rows[0]?.v;
    results.push(await runEngine(`PGlite ${version ?? ''} (in-memory)`, lite));
  } finally {
    await lite.close();
    cleanup = undefined;
  }

  const baseUrl = process.env.DATABASE_URL;
  if (!baseUrl) {
    console.log('PostgreSQL: skipped (DATABASE_URL is not set)');
    return results;
  }
  const scratch = await createScratchPostgresDatabase(baseUrl);
  let pgDb: Db | undefined;
  cleanup = async () => {
    await pgDb?.close().catch(() => undefined);
    await scratch.drop();
  };
  try {
    pgDb = await createPostgresDb({ url: scratch.url, poolSize: 2 });
    const version = (await pgDb.asOwner((tx) => tx.query<{ v: string }>("select current_setting('server_version') as v"))).rows[0]?.v;
    results.push(await runEngine(`PostgreSQL ${version ?? ''} (scratch database)`, pgDb));
  } finally {
    await cleanup();
    cleanup = undefined;
  }
  return results;
}

try {
  const results = await main();
  console.log('\nsummary (mean per call, ms)');
  for (const r of results) {
    const ratio = r.call.rls.mean / r.call.base.mean;
    console.log(
      `  ${r.engine}: RLS ${ms(r.call.rls.mean)} / baseline ${ms(r.call.base.mean)} = ${ratio.toFixed(2)} ` +
        `(statement alone ${(r.statement.rls.mean / r.statement.base.mean).toFixed(2)}, ` +
        `RLS/reference ${(r.call.rls.mean / r.call.ref.mean).toFixed(2)}); target <= ${TARGET_RATIO} ${ratio <= TARGET_RATIO ? 'met' : 'NOT met'}`,
    );
  }
} catch (err) {
  console.error(err instanceof CheckFailed ? `FAILED: ${err.message}` : err);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
}
