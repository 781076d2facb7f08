/**
 * A throwaway PostgreSQL database per test suite, so test files running in parallel never see
 * each other's tables, rows or migration state. The application role is cluster-wide and is
 * shared; everything else lives and dies with the scratch database.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

async function withAdminClient(baseUrl: string, run: (client: pg.Client) => Promise<unknown>): Promise<void> {
  const client = new pg.Client({ connectionString: baseUrl, connectionTimeoutMillis: 10_000 });
  // A connection dropped mid-command surfaces through the awaited query; this keeps it from also crashing the run.
  client.on('error', () => undefined);
  await client.connect();
  try {
    await run(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `gh_test_<random hex>` using the base URL's user and database to issue CREATE DATABASE,
 * and returns its URL and an idempotent drop that disconnects anything still attached.
 */
export async function createScratchPostgresDatabase(baseUrl: string): Promise<{ url: string; drop: () => Promise<void> }> {
  // Random hex only, so the name is a safe unquoted identifier.
  const name = `gh_test_${randomBytes(8).toString('hex')}`;
  await withAdminClient(baseUrl, (client) => client.query(`CREATE DATABASE ${name}`));
  const url = new URL(baseUrl);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    url: url.toString(),
    drop: async () => {
      if (dropped) return;
      dropped = true;
      // FORCE (PostgreSQL 13+) terminates sessions a failed test left behind instead of failing the drop.
      await withAdminClient(baseUrl, (client) => client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * The environment for a suite's node on the configured services: a scratch PostgreSQL database
 * when DATABASE_URL is set, Redis under a key prefix of this run's own when REDIS_URL is set
 * (neither: the embedded defaults). `drop` removes the scratch database; call it after the node closes.
 * @example const services = await suiteServices(); t = await createTestApp({ env: services.env }); ... await services.drop()
 */
export async function suiteServices(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  const env: Record<string, string> = {};
  let drop = async (): Promise<void> => undefined;
  if (process.env.DATABASE_URL) {
    const scratch = await createScratchPostgresDatabase(process.env.DATABASE_URL);
    drop = scratch.drop;
    env.DATABASE_URL = scratch.url;
  }
  if (process.env.REDIS_URL) {
    env.REDIS_URL = process.env.REDIS_URL;
    // Redis outlives test runs: a prefix of this run's own keeps counters from earlier runs out.
    env.GATEHOUSE_KV_KEY_PREFIX = `t${randomBytes(6).toString('hex')}:`;
  }
  return { env, drop };
}

/**
 * A scratch database owned by a role of its own that is no superuser and cannot bypass RLS (how an
 * operator may well run Gatehouse's owner): tenant tables force row-level security, so this owner
 * sees no tenant row without a tenant context. Returns the owner's URL (use it as DATABASE_URL) and
 * a drop that removes the database, then the role.
 */
export async function createScratchDatabaseWithPlainOwner(baseUrl: string): Promise<{ url: string; role: string; drop: () => Promise<void> }> {
  // Random hex only, so the name is a safe unquoted identifier; no password: the test cluster trusts loopback.
  const role = `gh_owner_${randomBytes(8).toString('hex')}`;
  await withAdminClient(baseUrl, (client) => client.query(`CREATE ROLE ${role} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION`));
  let scratch: Awaited<ReturnType<typeof createScratchPostgresDatabase>> | undefined;
  const drop = async (): Promise<void> => {
    await scratch?.drop();
    await withAdminClient(baseUrl, (client) => client.query(`DROP ROLE IF EXISTS ${role}`));
  };
  try {
    scratch = await createScratchPostgresDatabase(baseUrl);
    const name = new URL(scratch.url).pathname.slice(1);
    await withAdminClient(baseUrl, (client) => client.query(`ALTER DATABASE ${name} OWNER TO ${role}`));
    // PostgreSQL before 15: public belongs to the bootstrap superuser; hand it to the owner too.
    await withAdminClient(scratch.url, (client) => client.query(`ALTER SCHEMA public OWNER TO ${role}`));
  } catch (err) {
    await drop().catch(() => undefined);
    throw err;
  }
  const url = new URL(scratch.url);
  url.username = role;
  url.password = '';
  return { url: url.toString(), role, drop };
}
