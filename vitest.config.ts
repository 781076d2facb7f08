import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // Tests are bounded by their work (fixed counts, no wall-clock assertions). These timeouts
    // only catch a hang: on two shared cores a busy machine has made 30-second tests take minutes,
    // so they are far above any test's normal run. A test that sets its own (lower) timeout keeps it.
    testTimeout: 600_000,
    hookTimeout: 600_000,
    // PGlite instances are large; two cores, so keep the worker count small.
    maxWorkers: 2,
    pool: 'forks',
  },
});
