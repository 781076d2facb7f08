/**
 * `gatehouse jobs list` and `gatehouse jobs run <job>` (EDGE-7): the scheduled jobs of every
 * feature module, run by an operator on the server's storage (PGlite: with the server stopped; on
 * PostgreSQL beside running nodes, under the same cluster-wide lock as their scheduled runs).
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import { createLiveConfig } from '../config/live.ts';
import { FEATURE_MODULES } from '../features.ts';
import { JOBS } from '../jobs/index.ts';
import { createSigningKeys } from '../keyring/signing-keys.ts';
import { createModules } from '../server/module-runtime.ts';
import type { Scheduler } from '../jobs/index.ts';
import { openAll, type Out } from './keys.ts';

async function withScheduler<T>(loaded: LoadedConfig, logger: Logger, run: (scheduler: Scheduler) => Promise<T>): Promise<T> {
  const o = await openAll(loaded, logger);
  try {
    const signingKeys = await createSigningKeys({ db: o.db, kv: o.kv, keyring: o.keyring });
    try {
      await signingKeys.ensure();
      const onError = (module: string, err: unknown): void => logger.error({ err, module }, 'module close failed');
      const modules = await createModules(FEATURE_MODULES, { config: loaded.config, live: createLiveConfig(loaded.config), db: o.db, kv: o.kv, logger, keyring: o.keyring, signingKeys, now: Date.now, overrides: {} }, onError);
      try {
        return await run(modules.use(JOBS));
      } finally {
        await modules.close(onError);
      }
    } finally {
      await signingKeys.close();
    }
  } finally {
    await o.close();
  }
}

/** One line per job: name, schedule, next and last run. */
export async function runJobsList(loaded: LoadedConfig, logger: Logger, out: Out): Promise<void> {
  await withScheduler(loaded, logger, async (scheduler) => {
    for (const job of await scheduler.list()) {
      const last = job.lastRun ? `${job.lastRun.outcome} at ${job.lastRun.startedAt} (${job.lastRun.durationMs ?? '-'} ms, ${job.lastRun.node})` : 'never';
      out(`${job.name}\t${job.schedule}${job.scheduled ? '' : ' (not scheduled)'}\tnext ${job.nextRun ?? '-'}\tlast ${last}\t${job.summary}`);
    }
  });
}

/** Runs one job now; returns the exit code (0 succeeded, 1 failed or already running). */
export async function runJobsRun(loaded: LoadedConfig, logger: Logger, name: string, out: Out): Promise<number> {
  return withScheduler(loaded, logger, async (scheduler) => {
    if (!scheduler.has(name)) throw new Error(`no job is named "${name}"; \`gatehouse jobs list\` lists them`);
    const result = await scheduler.run(name, 'cli');
    if (result.status === 'succeeded') {
      out(`${name}: succeeded in ${result.durationMs} ms ${JSON.stringify(result.summary ?? {})}`);
      return 0;
    }
    if (result.status === 'failed') out(`${name}: failed after ${result.durationMs} ms (${result.error})`);
    else out(`${name}: already running on a node; nothing started`);
    return 1;
  });
}
