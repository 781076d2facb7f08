/**
 * The audit feature as a module: the tamper-evident log every other feature records into
 * (AUDIT-1..3), and the routes that read it. Created first among the features that record.
 */
import { createHash } from 'node:crypto';
import { canonicalText } from './canonical.ts';
import { maskedConfig } from '../config/load.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineModule, moduleRef, type JobDef } from '../server/module.ts';
import { createAuditLog, type AuditLog } from './log.ts';
import { createAuditFeature } from './routes.ts';
import { AUDIT_OWN_ACTIONS } from './actions.ts';

export const AUDIT = moduleRef<AuditLog>('audit');

export const auditModule = defineModule({
  ref: AUDIT,
  dependsOn: [],
  auditActions: AUDIT_OWN_ACTIONS,
  create: async (ctx) => {
    const audit = createAuditLog({ db: ctx.db, keyring: ctx.keyring, signingKeys: ctx.signingKeys, settings: ctx.config.audit, actions: ctx.auditActions, now: ctx.now });
    // Every start is on the platform log, with the fingerprint of its (masked) configuration.
    await audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'node.started', data: { configSha256: createHash('sha256').update(canonicalText(maskedConfig(ctx.config))).digest('hex') } });
    // Logs are listed through the audit_heads_scan policy (one statement, any owner role), and
    // each is then worked on in its own tenant context: forced RLS binds a plain owner too.
    const jobs: JobDef[] = [
      {
        name: 'audit.checkpoint',
        schedule: '* * * * *',
        summary: 'Signs a checkpoint of every log with events no checkpoint covers yet (otherwise signed at its next append or read).',
        run: async ({ signal }) => {
          let logsSeen = 0;
          // Only logs with events no checkpoint covers: the others need no work this minute.
          for (const tenantId of await audit.logs({ behind: true })) {
            if (signal.aborted) break;
            await audit.checkpointIfBehind(tenantId, true);
            logsSeen += 1;
          }
          return { logs: logsSeen };
        },
      },
      {
        name: 'audit.prune',
        schedule: '40 3 * * *',
        summary: 'Applies audit.retentionDays to every log (as `gatehouse audit prune`).',
        run: async ({ signal }) => {
          let removed = 0;
          for (const tenantId of await audit.logs()) {
            if (signal.aborted) break;
            removed += (await audit.prune(tenantId)).removed;
          }
          return { removed };
        },
      },
    ];
    return { api: audit, feature: createAuditFeature(audit), jobs };
  },
});
