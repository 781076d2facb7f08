/**
 * `gatehouse audit export --org <id>` and `gatehouse audit prune`: the database side of the audit
 * log, run by an operator on the server's storage (PGlite: with the server stopped).
 */
import type { Logger } from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import { createAuditLog } from '../audit/index.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { createSigningKeys } from '../keyring/signing-keys.ts';
import { assertTenantId } from '../store/index.ts';
import { openAll, type Out } from './keys.ts';

async function withAuditLog<T>(loaded: LoadedConfig, logger: Logger, run: (log: ReturnType<typeof createAuditLog>, list: () => Promise<string[]>) => Promise<T>): Promise<T> {
  const o = await openAll(loaded, logger);
  try {
    const signingKeys = await createSigningKeys({ db: o.db, kv: o.kv, keyring: o.keyring });
    try {
      await signingKeys.ensure();
      const log = createAuditLog({ db: o.db, keyring: o.keyring, signingKeys, settings: loaded.config.audit, now: Date.now });
      // Every log (the audit_heads_scan policy): the owner alone lists none when it cannot bypass RLS.
      return await run(log, () => log.logs());
    } finally {
      await signingKeys.close();
    }
  } finally {
    await o.close();
  }
}

/** Writes one log's export (JSON Lines) to `write`; `org` is an org id or "platform". */
export async function runAuditExport(loaded: LoadedConfig, logger: Logger, org: string, write: (chunk: string) => Promise<void>): Promise<void> {
  const tenantId = org === 'platform' ? PLATFORM_TENANT_ID : org;
  assertTenantId(tenantId);
  await withAuditLog(loaded, logger, async (log) => {
    for await (const line of log.exportLines(tenantId)) await write(line);
  });
}

/** Applies retention (`audit.retentionDays`) to every log. */
export async function runAuditPrune(loaded: LoadedConfig, logger: Logger, out: Out): Promise<void> {
  await withAuditLog(loaded, logger, async (log, list) => {
    for (const tenantId of await list()) {
      const r = await log.prune(tenantId);
      out(`${tenantId === PLATFORM_TENANT_ID ? 'platform' : tenantId}: removed ${r.removed} events; events before ${r.prunedUpto} are pruned`);
    }
  });
}
