/**
 * `POST /v1/cron/:job` (EDGE-7): for operators who run their own scheduler. Guarded by the cron
 * secret (several valid during a rotation, compared in constant time), rate limited like every
 * write, and refused with 409 JOB_RUNNING while another run of the job holds its lock anywhere.
 */
import { z } from 'zod';
import type { ErrorCodeInfo } from '../server/error-codes.ts';
import { AppError, registerErrorCodes } from '../server/errors.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import type { Scheduler } from './scheduler.ts';

export const JOBS_ERROR_CODES: Record<string, ErrorCodeInfo> = {
  JOB_NOT_FOUND: { status: 404, message: 'No job has this name.', doc: 'The cron endpoint names a job no feature declares; `gatehouse jobs list` lists them.' },
  JOB_RUNNING: {
    status: 409,
    message: 'This job is already running.',
    doc: 'Another run of the job (scheduled, from the cron endpoint or the CLI, on any node) holds its lock. Nothing was started; call again after it ends.',
  },
  JOB_FAILED: { status: 500, message: 'The job failed.', doc: 'The job ran and failed; its history row (`gatehouse jobs list`) has the error class. Safe to call again.' },
};

registerErrorCodes(JOBS_ERROR_CODES);

const params = z.strictObject({ job: z.string().min(1).max(100) });
const runResponse = z.strictObject({
  job: z.string(),
  runId: z.string(),
  outcome: z.literal('succeeded'),
  durationMs: z.number(),
  summary: z.record(z.string(), z.unknown()).nullable(),
});

export function createJobsFeature(scheduler: Scheduler): Feature {
  return {
    id: 'jobs',
    errorCodes: JOBS_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'POST',
        url: '/v1/cron/:job',
        summary: 'Run a scheduled job now, on this node, once the cluster-wide lock is free (for external schedulers). Answers when the run ends.',
        guard: { kind: 'cron' },
        permission: null,
        rateCategory: 'write',
        schema: { params, body: z.strictObject({}).nullish(), response: { 200: runResponse } },
        handler: async ({ params: p }) => {
          if (!scheduler.has(p.job)) throw new AppError('JOB_NOT_FOUND');
          const result = await scheduler.run(p.job, 'endpoint');
          if (result.status === 'busy' || result.status === 'skipped') throw new AppError('JOB_RUNNING');
          if (result.status === 'failed') throw new AppError('JOB_FAILED');
          return { job: p.job, runId: result.runId, outcome: 'succeeded' as const, durationMs: result.durationMs, summary: result.summary };
        },
      }),
    ],
  };
}
