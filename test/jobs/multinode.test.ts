/**
 * Scheduled jobs on two nodes (EDGE-7), on PostgreSQL + Redis: a scheduled time is run by one node
 * only, however both fire; a run on one node makes the other's attempt busy (409 at the cron
 * endpoint); a node that dies mid-run releases the lock with its connection, and its run is
 * marked abandoned when the next run starts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS } from '../../src/jobs/index.ts';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import { TEST_JOBS, testJobsModule } from './test-module.ts';

const SECRET = 'cron-secret-two-nodes-0123456789';

describe.skipIf(twoNodeSkipReason !== undefined)('jobs on two nodes (PostgreSQL + Redis)', () => {
  let nodes: TwoNodes;
  beforeAll(async () => {
    nodes = await startTwoNodes({ extraModules: [testJobsModule()], overrides: { 'rateLimit.enabled': false, 'cron.secret': SECRET } });
  });
  afterAll(async () => nodes?.close());

  it('job lock: both nodes fire the same scheduled times at once, each time runs once', async () => {
    const { a, b } = nodes;
    const base = Date.UTC(2026, 0, 1, 0, 0, 0);
    const TICKS = 15;
    let ran = 0;
    for (let i = 0; i < TICKS; i++) {
      const at = new Date(base + i * 60_000);
      // Both nodes' timers fire for the same time at once; one runs it, the other is busy or skips it.
      const results = await Promise.all([a.use(JOBS).run('test.count', 'schedule', at), b.use(JOBS).run('test.count', 'schedule', at)]);
      expect(results.filter((r) => r.status === 'succeeded')).toHaveLength(1);
      ran += results.filter((r) => r.status === 'succeeded').length;
      // A node firing late for a time already run skips it.
      expect((await b.use(JOBS).run('test.count', 'schedule', at)).status).toBe('skipped');
    }
    expect(ran).toBe(TICKS);
    expect(a.use(TEST_JOBS).counted() + b.use(TEST_JOBS).counted()).toBe(TICKS);
    const { rows } = await a.db.query<{ n: number }>("select count(*)::int as n from job_runs where job = 'test.count' and trigger = 'schedule'");
    expect(rows[0]?.n).toBe(TICKS);
  });

  it('a run on one node makes the other node answer 409 JOB_RUNNING', async () => {
    const { a, b } = nodes;
    a.use(TEST_JOBS).hold();
    b.use(TEST_JOBS).hold();
    const running = a.use(JOBS).run('test.block', 'cli');
    try {
      await a.use(TEST_JOBS).blockStarted();
      const answer = b.app.inject({ method: 'POST', url: '/v1/cron/test.block', headers: { authorization: `Bearer ${SECRET}` } });
      // Bounded by work, not time: b's answer, or b's run inside the job (the lock let it in). Then
      // b's gate opens, so a run the lock let in answers 200 at once and fails below.
      try {
        await Promise.race([answer, b.use(TEST_JOBS).blockStarted()]);
      } finally {
        b.use(TEST_JOBS).release();
      }
      const res = await answer;
      expect(res.statusCode).toBe(409);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('JOB_RUNNING');
    } finally {
      a.use(TEST_JOBS).release();
    }
    expect((await running).status).toBe('succeeded');
  });

  it('a job whose node dies mid-run: the lock goes with its connection, the next run proceeds and marks it abandoned', async () => {
    const { a, b } = nodes;
    a.use(TEST_JOBS).hold();
    b.use(TEST_JOBS).hold();
    const dying = a.use(JOBS).run('test.block', 'cli').catch((err: unknown) => err);
    await a.use(TEST_JOBS).blockStarted();
    // As above: b's run is refused at once, or it starts inside the job and is let through to fail.
    const refused = b.use(JOBS).run('test.block', 'cli');
    const bStarted = await Promise.race([refused.then(() => false), b.use(TEST_JOBS).blockStarted().then(() => true)]);
    if (bStarted) {
      b.use(TEST_JOBS).release();
      a.use(TEST_JOBS).release();
    }
    expect((await refused).status).toBe('busy');
    b.use(TEST_JOBS).hold();
    // The node's connection is cut as its death would cut it: the session holding the advisory lock ends.
    const holders = await b.db.asOwner((tx) =>
      tx.query<{ pid: number }>("select pid from pg_locks where locktype = 'advisory' and granted and database = (select oid from pg_database where datname = current_database())"),
    );
    expect(holders.rows.length).toBe(1);
    const pid = holders.rows[0]?.pid;
    await b.db.asOwner((tx) => tx.query('select pg_terminate_backend($1)', [pid]));
    // Termination is asynchronous: wait (bounded by count) until the session is gone.
    for (let i = 0; i < 200; i++) {
      const alive = await b.db.asOwner((tx) => tx.query('select 1 from pg_stat_activity where pid = $1', [pid]));
      if (alive.rowCount === 0) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const next = b.use(JOBS).run('test.block', 'cli');
    await b.use(TEST_JOBS).blockStarted();
    b.use(TEST_JOBS).release();
    expect((await next).status).toBe('succeeded');
    const history = await b.use(JOBS).history({ job: 'test.block', limit: 3 });
    expect(history[0]?.outcome).toBe('succeeded');
    expect(history[1]?.outcome).toBe('abandoned');
    // The dead run's late end changes nothing.
    a.use(TEST_JOBS).release();
    await dying;
    expect((await b.use(JOBS).history({ job: 'test.block', limit: 3 }))[1]?.outcome).toBe('abandoned');
  });
});
