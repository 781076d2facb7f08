/**
 * The audit feature's public face for other features: the types they are handed through their
 * create(ctx). Other features import audit only from here (eslint.config.js, layer rules); the
 * feature's own create(ctx) joins this file in the module split (issue 17).
 */
export type { AuditLog } from './log.ts';
export type { AuditAction } from './actions.ts';
// Backups re-verify every log of a restored database (OPS-1).
export { createAuditLog } from './log.ts';
export { verifyExport } from './verify.ts';
export type { TrustedKey } from './verify-pins.ts';
