/** A feature module declaring test jobs: a counter, a job that fails, and one that waits on a gate. */
import { defineModule, moduleRef, type JobDef } from '../../src/server/module.ts';

export interface TestJobs {
  /** Runs of `test.count` on this node. */
  counted: () => number;
  /** Resolves once `test.block` is running on this node. */
  blockStarted: () => Promise<void>;
  /** Lets every waiting `test.block` run end. */
  release: () => void;
}

export const TEST_JOBS = moduleRef<TestJobs>('test-jobs');

export function testJobsModule() {
  return defineModule({
    ref: TEST_JOBS,
    dependsOn: [],
    create: () => {
      let count = 0;
      let started: () => void = () => undefined;
      let startedP = new Promise<void>((r) => (started = r));
      let open: () => void = () => undefined;
      let gate = new Promise<void>((r) => (open = r));
      const jobs: JobDef[] = [
        {
          name: 'test.count',
          schedule: '0 0 1 1 *',
          summary: 'counts its runs',
          run: async () => {
            count += 1;
            // Long enough that a second node's attempt at the same time overlaps it.
            await new Promise((r) => setTimeout(r, 20));
            return { count };
          },
        },
        {
          name: 'test.fail',
          schedule: '0 0 1 1 *',
          summary: 'always fails',
          run: async () => {
            const err = new Error('secret detail that must not reach the history') as Error & { code: string };
            err.code = 'TEST_FAILURE';
            throw err;
          },
        },
        {
          name: 'test.block',
          schedule: '0 0 1 1 *',
          summary: 'waits for the test to release it',
          run: async () => {
            started();
            await gate;
            return { released: true };
          },
        },
      ];
      return {
        api: {
          counted: () => count,
          blockStarted: () => startedP,
          release: () => {
            open();
            gate = new Promise<void>((r) => (open = r));
            startedP = new Promise<void>((r) => (started = r));
          },
        },
        jobs,
      };
    },
  });
}
