/** A feature module declaring test jobs: a counter, a job that fails, and one that waits on a gate the test holds and releases. */
import { defineModule, moduleRef, type JobDef } from '../../src/server/module.ts';

export interface TestJobs {
  /** Runs of `test.count` on this node. */
  counted: () => number;
  /** Closes the gate: from now on `test.block` runs wait until `release`; the count of entries starts again at 0. */
  hold: () => void;
  /** Resolves once `test.block` is running on this node (since the last `hold`). */
  blockStarted: () => Promise<void>;
  /**
   * Resolves once `n` runs of `test.block` have started on this node since the last `hold`. With the
   * lock working a second concurrent run never starts, so this is how a test sees a broken lock at
   * once instead of waiting for a timeout.
   */
  blockEntries: (n: number) => Promise<void>;
  /** Opens the gate: every waiting `test.block` run ends, and later runs pass until the next `hold`. */
  release: () => void;
}

export const TEST_JOBS = moduleRef<TestJobs>('test-jobs');

export function testJobsModule() {
  return defineModule({
    ref: TEST_JOBS,
    dependsOn: [],
    create: () => {
      let count = 0;
      // The gate of test.block: closed from the start (as after hold()), open after release().
      let open: () => void = () => undefined;
      let gate = new Promise<void>((r) => (open = r));
      let isOpen = false;
      let entries = 0;
      let waiters: Array<{ n: number; resolve: () => void }> = [];
      const entered = (): void => {
        entries += 1;
        for (const w of waiters.filter((x) => entries >= x.n)) w.resolve();
        waiters = waiters.filter((x) => entries < x.n);
      };
      const blockEntries = (n: number): Promise<void> => (entries >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })));
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
            entered();
            await gate;
            return { released: true };
          },
        },
      ];
      return {
        api: {
          counted: () => count,
          hold: () => {
            // A gate still closed stays the same one: no run already waiting is orphaned.
            if (isOpen) gate = new Promise<void>((r) => (open = r));
            isOpen = false;
            entries = 0;
            waiters = [];
          },
          blockStarted: () => blockEntries(1),
          blockEntries,
          release: () => {
            isOpen = true;
            open();
          },
        },
        jobs,
      };
    },
  });
}
