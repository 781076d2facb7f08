/**
 * The audit feature as a module: the tamper-evident log every other feature records into
 * (AUDIT-1..3), and the routes that read it. Created first among the features that record.
 */
import { createHash } from 'node:crypto';
import { canonicalText } from './canonical.ts';
import { maskedConfig } from '../config/load.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineModule, moduleRef } from '../server/module.ts';
import { createAuditLog, type AuditLog } from './log.ts';
import { createAuditFeature } from './routes.ts';

export const AUDIT = moduleRef<AuditLog>('audit');

export const auditModule = defineModule({
  ref: AUDIT,
  dependsOn: [],
  create: async (ctx) => {
    const audit = createAuditLog({ db: ctx.db, keyring: ctx.keyring, signingKeys: ctx.signingKeys, settings: ctx.config.audit, now: ctx.now });
    // Every start is on the platform log, with the fingerprint of its (masked) configuration.
    await audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'node.started', data: { configSha256: createHash('sha256').update(canonicalText(maskedConfig(ctx.config))).digest('hex') } });
    return { api: audit, feature: createAuditFeature(audit) };
  },
});
