/**
 * Audit append benchmark (`npm run bench:audit`, which then runs bench/audit-verify.ts): appends/s
 * with 8 concurrent writers into one log, on in-memory PGlite and, with DATABASE_URL (and
 * REDIS_URL, optional), on a scratch PostgreSQL database dropped at the end.
 *
 * Each append is the real one (`audit.record`): the IP and user agent sealed with the tenant's
 * data key, the log's head row locked, the event and its tree nodes inserted, a signed checkpoint
 * every `audit.checkpointEvery` (100) events. Writers share one log on purpose: that is the
 * contended case (appends to one log serialise on its head row; different logs do not).
 *
 * BENCH_SECONDS (default 5) per engine after a 1 s warm-up. Prints appends/s, p50 and p99 latency.
 * At the end the log is exported and verified, so the figures are of appends that really verify.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import { verifyExport } from '../src/audit/verify.ts';
import { startNode, type Node } from '../src/cli/runtime.ts';
import { loadConfig } from '../src/config/load.ts';
import { runWithRequest } from '../src/server/request-context.ts';
import { createLogger } from '../src/server/logger.ts';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';
import { envSeconds, runWithStartFlags } from './env.ts';

const SECONDS = envSeconds('BENCH_SECONDS', 5);
const WRITERS = 8;
const deadline = setTimeout(() => {
  console.error('FAILED: the benchmark did not finish in time');
  process.exit(2);
}, (SECONDS + 1) * 2 * 1000 + 120_000);

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0;
}

async function measure(name: string, env: Record<string, string>, inMemory: boolean): Promise<void> {
  const { config } = loadConfig({
    env: { GATEHOUSE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`, GATEHOUSE_KV_KEY_PREFIX: `b${randomBytes(4).toString('hex')}:`, ...env },
    cwd: '/nonexistent-gatehouse-bench',
  });
  const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
  const node: Node = await startNode({ config, logger, inMemory });
  try {
    const log = randomUUID();
    await node.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    const request = { requestId: randomUUID(), ip: '203.0.113.9', userAgent: 'bench/1.0', principal: { kind: 'user' as const, id: randomUUID() } };
    const append = (i: number): Promise<number> => runWithRequest(request, () => node.audit.record({ tenantId: log, action: 'org.updated', data: { i } }));
    const run = async (seconds: number): Promise<number[]> => {
      const latencies: number[] = [];
      const end = performance.now() + seconds * 1000;
      let i = 0;
      await Promise.all(
        Array.from({ length: WRITERS }, async () => {
          while (performance.now() < end) {
            const t0 = performance.now();
            await append((i += 1));
            latencies.push(performance.now() - t0);
          }
        }),
      );
      return latencies;
    };
    await run(1);
    const latencies = await run(SECONDS);
    latencies.sort((x, y) => x - y);
    const lines: string[] = [];
    for await (const line of node.audit.exportLines(log)) lines.push(line.trimEnd());
    const report = await verifyExport(
      (async function* () {
        yield* lines;
      })(),
    );
    if (!report.ok) throw new Error(`the benchmark's log does not verify: ${JSON.stringify(report.problem)}`);
    console.log(
      `${name.padEnd(32)} ${(latencies.length / SECONDS).toFixed(0).padStart(6)} appends/s   p50 ${percentile(latencies, 0.5).toFixed(2)} ms   p99 ${percentile(latencies, 0.99).toFixed(2)} ms   (${WRITERS} writers, ${report.events} events, ${report.checkpoints} checkpoints, export verified)`,
    );
  } finally {
    await node.close();
  }
}

// Measured as `npm start` runs a node: with its Node flags (see runWithStartFlags in env.ts).
await runWithStartFlags();
console.log(`audit appends, ${WRITERS} concurrent writers, one log, ${SECONDS} s each`);
await measure('PGlite (in-memory)', {}, true);
const baseUrl = process.env.DATABASE_URL;
if (baseUrl) {
  const scratch = await createScratchPostgresDatabase(baseUrl);
  try {
    await measure(`PostgreSQL${process.env.REDIS_URL ? ' + Redis' : ''}`, { DATABASE_URL: scratch.url, ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}) }, false);
  } finally {
    await scratch.drop();
  }
} else {
  console.log('PostgreSQL: skipped (DATABASE_URL is not set)');
}
clearTimeout(deadline);
