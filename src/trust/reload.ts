/**
 * Reload without restart (OPS-3), as the node runs it: one reload at a time, whatever asked for
 * it (SIGHUP, `gatehouse reload`, a change to a watched `<VAR>_FILE` or config file). Each reload
 * is an audit event on the platform log with the configuration's fingerprint and the names of
 * the options that changed (never a value), a log line, a metric, and a status file the CLI reads.
 */
import { unwatchFile, watchFile, existsSync, writeFileSync, renameSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import type { LiveConfig, ReloadOutcome } from '../config/live.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';

export type ReloadTrigger = 'signal' | 'file' | 'api';

/** The status file a node writes after each reload, for `gatehouse reload` (in the data directory). */
export function reloadStatusPath(dataDir: string, pid: number): string {
  return join(resolve(dataDir), `reload-status-${pid}.json`);
}

export interface Reloader {
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
  /** Starts watching the files the configuration was read from. */
  watch(): void;
  metrics: (Counter | Gauge)[];
  close(): void;
}

export function createReloader(deps: { live: LiveConfig; audit: AuditLog; logger: Logger; now: () => number; dataDir: string }): Reloader {
  const { live, audit, logger, now } = deps;
  const outcomes = new Counter({ name: 'gatehouse_config_reloads_total', help: 'Configuration reloads by outcome (applied, unchanged, refused).', labelNames: ['outcome'], registers: [] });
  const lastOk = new Gauge({ name: 'gatehouse_config_last_reload_success', help: '1 when the last configuration reload was applied or found nothing to change, 0 when it was refused.', registers: [] });
  for (const outcome of ['applied', 'unchanged', 'refused']) outcomes.inc({ outcome }, 0);
  lastOk.set(1);
  let chain: Promise<unknown> = Promise.resolve();
  const watched: string[] = [];
  let debounce: NodeJS.Timeout | undefined;

  async function runOnce(trigger: ReloadTrigger): Promise<ReloadOutcome> {
    const outcome = live.reload(now);
    outcomes.inc({ outcome: outcome.status });
    lastOk.set(outcome.status === 'refused' ? 0 : 1);
    const fields = { trigger, status: outcome.status, changed: outcome.changed, needsRestart: outcome.needsRestart, configSha256: outcome.configSha256 };
    if (outcome.status === 'refused') logger.error({ reload: { ...fields, reason: outcome.reason } }, 'configuration reload refused; the node keeps the running configuration');
    else logger.info({ reload: fields }, outcome.status === 'applied' ? 'configuration reloaded' : 'configuration reload: nothing to change');
    if (outcome.needsRestart.length > 0) logger.warn({ needsRestart: outcome.needsRestart }, 'options changed that apply only after a restart');
    try {
      await audit.record({
        tenantId: PLATFORM_TENANT_ID,
        action: outcome.status === 'refused' ? 'config.reload_refused' : 'config.reloaded',
        data: { trigger, status: outcome.status, configSha256: outcome.configSha256, changed: outcome.changed.join(','), needsRestart: outcome.needsRestart.join(','), ...(outcome.reason ? { reason: outcome.reason } : {}) },
      });
    } catch (err) {
      logger.error({ err }, 'the reload could not be recorded in the audit log');
    }
    writeStatus(outcome);
    return outcome;
  }

  function writeStatus(outcome: ReloadOutcome): void {
    if (!existsSync(resolve(deps.dataDir))) return;
    const path = reloadStatusPath(deps.dataDir, process.pid);
    try {
      writeFileSync(`${path}.tmp`, JSON.stringify(outcome), { mode: 0o600 });
      renameSync(`${path}.tmp`, path);
    } catch (err) {
      logger.warn({ err }, 'the reload status file could not be written');
    }
  }

  const reload = (trigger: ReloadTrigger): Promise<ReloadOutcome> => {
    const run = chain.then(() => runOnce(trigger));
    chain = run.catch(() => undefined);
    return run;
  };

  return {
    reload,
    watch: () => {
      const intervalMs = live.watchIntervalMs();
      for (const file of live.watchedFiles()) {
        watched.push(file);
        watchFile(file, { interval: intervalMs, persistent: false }, (curr, prev) => {
          if (curr.mtimeMs === prev.mtimeMs && curr.ino === prev.ino && curr.size === prev.size) return;
          clearTimeout(debounce);
          debounce = setTimeout(() => void reload('file'), 50);
        });
      }
    },
    metrics: [outcomes, lastOk],
    close: () => {
      clearTimeout(debounce);
      for (const file of watched.splice(0)) unwatchFile(file);
    },
  };
}
