/**
 * `gatehouse trust-report` and `gatehouse reload` (OPS-3, OPS-4).
 *
 * trust-report starts a node in this process on the configured storage (refused with exit 3 while
 * a server holds the embedded data directory: ask that server for GET /v1/admin/trust-report),
 * listens on an ephemeral loopback port so the TLS check makes a real handshake with the
 * configured certificate, writes the signed report (JSON or HTML), and stops.
 *
 * reload finds the running node through the data-directory lock (or `--pid`), sends it SIGHUP and
 * waits for the status file the node writes after the reload; exit 0 applied or unchanged, 1
 * refused or no answer.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import type { ReloadOutcome } from '../config/live.ts';
import { readLock } from '../store/data-dir.ts';
import { quietLogger } from './keys.ts';
import { startNode } from './runtime.ts';
import { TRUST, reloadStatusPath, renderTrustHtml } from '../trust/index.ts';

export async function runTrustReport(loaded: LoadedConfig, options: { format: 'json' | 'html'; out?: string }, out: (text: string) => void): Promise<number> {
  const node = await startNode({ config: loaded.config, logger: quietLogger() });
  try {
    await node.app.listen({ host: '127.0.0.1', port: 0 });
    const signed = await node.use(TRUST).generate();
    const text = options.format === 'html' ? renderTrustHtml(signed) : JSON.stringify(signed, null, 2) + '\n';
    if (options.out) writeFileSync(options.out, text, { mode: 0o644 });
    else out(text.trimEnd());
    const s = signed.report.summary;
    process.stderr.write(`trust report: ${s.active} active, ${s.off} off, ${s['not verified']} not verified, ${s.misconfigured} misconfigured, ${s.failed} failed\n`);
    return s.failed > 0 ? 1 : 0;
  } finally {
    await node.close();
  }
}

function readStatus(path: string): ReloadOutcome | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as ReloadOutcome;
  } catch {
    return undefined;
  }
}

export async function runReload(configuredDataDir: string, options: { pid?: number; waitMs?: number }, out: (line: string) => void): Promise<number> {
  const dataDir = resolve(configuredDataDir);
  const pid = options.pid ?? readLock(dataDir)?.pid;
  if (pid === undefined) throw new Error(`no running Gatehouse holds ${dataDir}; give the node's process id with --pid (on PostgreSQL, nodes hold no data-directory lock)`);
  const statusPath = reloadStatusPath(dataDir, pid);
  const before = readStatus(statusPath)?.at;
  process.kill(pid, 'SIGHUP');
  const deadline = Date.now() + (options.waitMs ?? 10_000);
  while (Date.now() < deadline) {
    const status = readStatus(statusPath);
    if (status && status.at !== before) {
      if (status.status === 'refused') {
        out(`reload refused: ${status.reason ?? 'no reason given'}; the node keeps its running configuration`);
        return 1;
      }
      out(status.status === 'applied' ? `reload applied: ${status.changed.join(', ')}` : 'reload: nothing to change');
      if (status.needsRestart.length > 0) out(`needing a restart (not applied): ${status.needsRestart.join(', ')}`);
      out(`configuration sha256 ${status.configSha256}`);
      return 0;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  out(`SIGHUP sent to pid ${pid}, but it reported no outcome in ${dataDir}; see its log (configuration reload) and gatehouse_config_reloads_total`);
  return 1;
}
