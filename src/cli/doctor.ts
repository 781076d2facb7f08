/**
 * `gatehouse doctor`: the effective configuration with secrets masked, where each value came
 * from, and connectivity checks. While a server holds the embedded data directory, storage is
 * checked through that server's /readyz instead of opening the directory a second time.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { maskedConfig, type LoadedConfig } from '../config/load.ts';
import { readLock } from '../store/data-dir.ts';
import { createDb } from '../store/index.ts';
import { createKv } from '../store/kv/index.ts';
import { createEnvKekSource, createFileKekSource } from '../crypto/kek-source.ts';
import { mailQueueReport } from '../identity/index.ts';

export interface DoctorReport {
  ok: boolean;
  lines: string[];
}

async function check(name: string, fn: () => Promise<string>): Promise<{ ok: boolean; line: string }> {
  try {
    return { ok: true, line: `  ok    ${name}: ${await fn()}` };
  } catch (err) {
    // Only the error's class and code: a driver message may echo a connection string.
    const e = err as NodeJS.ErrnoException;
    return { ok: false, line: `  FAIL  ${name}: ${e.code ?? e.name ?? 'error'}${e.message && !/\/\/|password/i.test(e.message) ? ` (${e.message.slice(0, 200)})` : ''}` };
  }
}

/**
 * Several nodes (shared PostgreSQL or Redis) must agree on the access tokens' issuer: by default
 * it is the public URL, which without server.publicUrl is each node's own listener address, so
 * a token one node issued is refused by the next (TOKEN_CLAIMS_INVALID).
 */
export function severalNodesIssuerWarnings(loaded: LoadedConfig): string[] {
  const { config } = loaded;
  const shared = [config.storage.databaseUrl ? 'DATABASE_URL' : undefined, config.kv.redisUrl ? 'REDIS_URL' : undefined].filter((v) => v !== undefined);
  if (shared.length === 0 || config.server.publicUrl || config.auth.issuer) return [];
  return [
    `${shared.join(' and ')} set (several nodes) but server.publicUrl is not: each node signs access tokens with its own listener address as issuer ` +
      'and the other nodes refuse them; set GATEHOUSE_SERVER_PUBLIC_URL to the URL clients use, the same on every node',
  ];
}

/**
 * Queued, sent and given-up mail, read from storage; given-up messages add a warning. While a
 * server holds the embedded data directory, the counts are on its /metrics instead.
 */
async function mailQueueCheck(config: LoadedConfig['config'], warnings: string[]): Promise<string> {
  const dir = resolve(config.storage.dataDir);
  const holder = config.storage.databaseUrl ? undefined : readLock(dir);
  if (holder) return `counted by the running server pid ${holder.pid}: gatehouse_mail_queue_messages on its /metrics`;
  const db = config.storage.databaseUrl
    ? await createDb({ databaseUrl: config.storage.databaseUrl, appUrl: config.storage.databaseAppUrl, appPassword: config.storage.databaseAppPassword, dataDir: undefined })
    : await createDb({ dataDir: dir });
  try {
    const report = await mailQueueReport(db).catch((err: unknown) => {
      // 42P01: no table yet, the first start (or `migrate`) creates it.
      if ((err as { code?: string }).code === '42P01') return { line: 'no mail queue yet (created by the first start or `gatehouse migrate`)' };
      throw err;
    });
    if ('warning' in report && report.warning) warnings.push(report.warning);
    return report.line;
  } finally {
    await db.close();
  }
}

export async function runDoctor(loaded: LoadedConfig): Promise<DoctorReport> {
  const { config } = loaded;
  const lines: string[] = [];
  lines.push('Effective configuration (secrets masked):');
  lines.push(JSON.stringify(maskedConfig(config), null, 2));
  lines.push(`Config file: ${loaded.configFile ?? 'none'}`);
  const sources = Object.entries(loaded.sources);
  if (sources.length > 0) {
    lines.push('Set explicitly:');
    for (const [path, source] of sources) lines.push(`  ${path} <- ${source}`);
  }
  const warnings: string[] = [];
  if (config.securityTxt.contact.includes('mailto:security@example.com')) {
    warnings.push('securityTxt.contact is the placeholder; set GATEHOUSE_SECURITY_TXT_CONTACT to your security contact');
  }
  if (config.server.host !== '127.0.0.1' && config.server.host !== '::1' && config.server.host !== 'localhost' && !config.tls.certFile) {
    warnings.push(`listening on ${config.server.host} without TLS: put a TLS-terminating proxy in front (and list it in server.trustedProxies)`);
  }
  if (config.gateway.providers.length === 0) {
    warnings.push(
      'no platform AI provider: API keys get no_provider_configured until a workspace adds its own; set GATEHOUSE_GATEWAY_PROVIDERS and GATEHOUSE_GATEWAY_PROVIDER_KEYS (README: "A first AI provider")',
    );
  }
  if (!config.metrics.token && !config.metrics.open) warnings.push('/metrics refuses every request: set GATEHOUSE_METRICS_TOKEN');
  if (config.storage.databaseUrl && !config.keyring.masterKeys) {
    warnings.push('key-encryption keys come from a local key file while storage is shared PostgreSQL: every node needs the same keys, set GATEHOUSE_MASTER_KEYS');
  }
  if (!config.kv.redisUrl && config.storage.databaseUrl) {
    warnings.push('no REDIS_URL: rate limits, revocations and cache evictions stay on this node; several nodes need a shared Redis');
  }
  warnings.push(...severalNodesIssuerWarnings(loaded));

  lines.push('Checks:');
  const results: { ok: boolean; line: string }[] = [];
  if (config.storage.databaseUrl) {
    results.push(
      await check('storage', async () => {
        const db = await createDb({
          databaseUrl: config.storage.databaseUrl,
          appUrl: config.storage.databaseAppUrl,
          appPassword: config.storage.databaseAppPassword,
          dataDir: undefined,
        });
        try {
          await db.ping();
          return `PostgreSQL reachable (${db.location})`;
        } finally {
          await db.close();
        }
      }),
    );
  } else {
    const dir = resolve(config.storage.dataDir);
    const holder = readLock(dir);
    if (holder) {
      results.push(
        await check('storage', async () => {
          if (!holder.url) throw new Error(`server pid ${holder.pid} holds ${dir} but has not announced its URL yet`);
          const res = await fetch(new URL('/readyz', holder.url), { signal: AbortSignal.timeout(3000) });
          const body = (await res.json()) as { checks?: { storage?: string } };
          if (body.checks?.storage !== 'ok') throw new Error(`the running server (pid ${holder.pid}) reports storage ${body.checks?.storage ?? 'unknown'}`);
          return `PGlite in ${dir}, in use by the running server pid ${holder.pid} (${holder.url}), which reports it ready`;
        }),
      );
    } else {
      results.push(
        await check('storage', async () => {
          const db = await createDb({ dataDir: dir });
          try {
            await db.ping();
            return `PGlite in ${dir} opens`;
          } finally {
            await db.close();
          }
        }),
      );
    }
  }
  results.push(await check('mail queue', () => mailQueueCheck(config, warnings)));
  results.push(
    await check('keyring', async () => {
      // Read-only: a missing key file is reported, not created (start creates it).
      const keyFile = config.keyring.keyFile ? resolve(config.keyring.keyFile) : join(resolve(config.storage.dataDir), 'master-keys.json');
      if (!config.keyring.masterKeys && !existsSync(keyFile)) return `no key file yet at ${keyFile}; the first start creates it (mode 0600)`;
      const source = config.keyring.masterKeys ? createEnvKekSource(config.keyring.masterKeys) : createFileKekSource(keyFile);
      const keks = await source.load();
      const primary = Math.max(...keks.map((k) => k.version));
      for (const k of keks) k.key.fill(0);
      return `${keks.length} key-encryption key version(s) from ${source.name === 'env' ? 'GATEHOUSE_MASTER_KEYS' : 'the key file'}, primary v${primary}`;
    }),
  );
  results.push(
    await check('kv', async () => {
      const kv = await createKv({ redisUrl: config.kv.redisUrl, keyPrefix: config.kv.keyPrefix });
      try {
        await kv.ping();
        return kv.kind === 'redis' ? 'Redis reachable' : 'in-memory (single node)';
      } finally {
        await kv.close();
      }
    }),
  );
  for (const r of results) lines.push(r.line);
  if (warnings.length > 0) {
    lines.push('Warnings:');
    for (const w of warnings) lines.push(`  - ${w}`);
  }
  const ok = results.every((r) => r.ok);
  lines.push(ok ? 'doctor: all checks passed' : 'doctor: some checks failed');
  return { ok, lines };
}
