/**
 * The audit feature's public face for other features: its module and the types they are handed
 * through their create(ctx). Other features import audit only from here (eslint.config.js, layer rules).
 */
export type { AuditLog } from './log.ts';
export type { AuditAction } from './actions.ts';
export { AUDIT, auditModule } from './module.ts';
