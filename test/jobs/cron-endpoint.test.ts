/**
 * Scheduled jobs on one node (EDGE-7): `POST /v1/cron/:job` requires the cron secret (the current
 * one or a previous one during a rotation), refuses a second concurrent run of a job with 409,
 * is rate limited, and every run is in the job history with its outcome; the modules' jobs
 * (audit, webhooks, the scheduler's own) are declared and listed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS } from '../../src/jobs/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { TEST_JOBS, testJobsModule } from './test-module.ts';

const CURRENT = 'cron-secret-current-0123456789';
const PREVIOUS = 'cron-secret-previous-0123456789';
let t: TestApp;

beforeAll(async () => {
  t = await createTestApp({ extraModules: [testJobsModule()], overrides: { 'rateLimit.enabled': false, 'cron.secret': CURRENT, 'cron.previousSecrets': [PREVIOUS] } });
});
afterAll(async () => t.close());

const cron = (job: string, secret?: string) => t.app.inject({ method: 'POST', url: `/v1/cron/${job}`, headers: secret === undefined ? {} : { authorization: `Bearer ${secret}` } });
const codeOf = (res: { json: () => unknown }): string => (res.json() as { error: { code: string } }).error.code;

describe('the cron endpoint', () => {
  it('attack: refuses a missing, wrong or truncated secret with 401 and runs nothing', async () => {
    const before = t.node.use(TEST_JOBS).counted();
    for (const secret of [undefined, 'wrong-secret-0123456789', CURRENT.slice(0, -1), `${CURRENT}x`]) {
      const res = await cron('test.count', secret);
      expect(res.statusCode).toBe(401);
      expect(codeOf(res)).toBe('UNAUTHENTICATED');
    }
    expect(t.node.use(TEST_JOBS).counted()).toBe(before);
  });

  it('runs a job with the current secret and with the previous one during a rotation', async () => {
    const before = t.node.use(TEST_JOBS).counted();
    const a = await cron('test.count', CURRENT);
    expect(a.statusCode).toBe(200);
    expect(a.json()).toMatchObject({ job: 'test.count', outcome: 'succeeded' });
    expect((await cron('test.count', PREVIOUS)).statusCode).toBe(200);
    expect(t.node.use(TEST_JOBS).counted()).toBe(before + 2);
  });

  it('answers 404 JOB_NOT_FOUND for a job nobody declares', async () => {
    expect(codeOf(await cron('no.such-job', CURRENT))).toBe('JOB_NOT_FOUND');
  });

  it('refuses a second concurrent run of the same job with 409 JOB_RUNNING', async () => {
    const jobs = t.node.use(TEST_JOBS);
    jobs.hold();
    const first = cron('test.block', CURRENT);
    await jobs.blockStarted();
    const concurrent = Promise.all(Array.from({ length: 5 }, () => cron('test.block', CURRENT)));
    // Bounded by work, not time: the five answers, or a second run inside the job (the lock let it
    // in). Then the gate opens, so a run the lock let in answers 200 at once and fails below.
    try {
      await Promise.race([concurrent, jobs.blockEntries(2)]);
    } finally {
      jobs.release();
    }
    for (const res of await concurrent) {
      expect(res.statusCode).toBe(409);
      expect(codeOf(res)).toBe('JOB_RUNNING');
    }
    expect((await first).statusCode).toBe(200);
    // Free again once it ended.
    jobs.hold();
    const again = cron('test.block', CURRENT);
    await jobs.blockStarted();
    jobs.release();
    expect((await again).statusCode).toBe(200);
  });

  it('answers 500 JOB_FAILED for a failing job; the history keeps the error code, not its message', async () => {
    const res = await cron('test.fail', CURRENT);
    expect(res.statusCode).toBe(500);
    expect(codeOf(res)).toBe('JOB_FAILED');
    const [last] = await t.node.use(JOBS).history({ job: 'test.fail', limit: 1 });
    expect(last).toMatchObject({ outcome: 'failed', trigger: 'endpoint', error: 'Error:TEST_FAILURE' });
    expect(JSON.stringify(last)).not.toContain('secret detail');
    expect(res.body).not.toContain('secret detail');
  });

  it('keeps a history row per run with duration, outcome and node, and counts runs in metrics', async () => {
    const rows = await t.node.use(JOBS).history({ job: 'test.count', limit: 10 });
    expect(rows.length).toBeGreaterThanOrEqual(2);
    for (const r of rows) {
      expect(r.outcome).toBe('succeeded');
      expect(r.durationMs).toBeGreaterThanOrEqual(0);
      expect(r.node).not.toBe('');
    }
    const metrics = await t.app.gatehouse.metrics.registry.metrics();
    expect(metrics).toMatch(/gatehouse_job_runs_total\{job="test.block",outcome="busy"\} 5/);
  });

  it('lists the jobs the feature modules declare, with their schedules', async () => {
    const names = (await t.node.use(JOBS).list()).map((j) => j.name);
    for (const name of ['audit.checkpoint', 'audit.prune', 'webhooks.redeliver', 'webhooks.prune', 'jobs.prune-history', 'test.count']) expect(names).toContain(name);
    for (const name of ['audit.checkpoint', 'audit.prune', 'webhooks.prune', 'jobs.prune-history', 'webhooks.redeliver']) {
      const r = await t.node.use(JOBS).run(name, 'cli');
      expect(r.status, name).toBe('succeeded');
    }
  });
});

describe('the cron endpoint under a rate limit', () => {
  it('attack: answers 429 once a caller exceeds the write limit', async () => {
    const limited = await createTestApp({
      extraModules: [testJobsModule()],
      overrides: { 'cron.secret': CURRENT, 'rateLimit.categories': { write: { ip: { limit: 1000, windowSeconds: 60 }, principal: { limit: 3, windowSeconds: 60 } } } },
    });
    try {
      const codes: number[] = [];
      for (let i = 0; i < 5; i++) codes.push((await limited.app.inject({ method: 'POST', url: '/v1/cron/test.count', headers: { authorization: `Bearer ${CURRENT}` } })).statusCode);
      expect(codes).toEqual([200, 200, 200, 429, 429]);
    } finally {
      await limited.close();
    }
  });
});

describe('configuration', () => {
  it('refuses to start with a schedule for a job nobody declares', async () => {
    await expect(createTestApp({ overrides: { 'jobs.enabled': true, 'jobs.schedules': { 'audit.prunee': '0 4 * * *' } } })).rejects.toThrow(/no job is named "audit.prunee"/);
  });
});
