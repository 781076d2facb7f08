/**
 * The audit feature's public face for other features: its module and the types they are handed
 * through their create(ctx). Other features import audit only from here (eslint.config.js, layer rules).
 */
export type { AuditLog } from './log.ts';
export type { AuditAction } from './actions.ts';
export { AUDIT, auditModule } from './module.ts';
// What the CLI uses of audit: the log itself (offline commands) and the verifier of exports.
export { createAuditLog } from './log.ts';
export { signedCheckpointSchema, type SignedCheckpoint } from './checkpoint.ts';
export { VERDICT_EXIT_CODES } from './verify-pins.ts';
export { formatReport, verifyExport, type TrustedKey, type VerifyPins } from './verify.ts';
export { canonicalBytes } from './canonical.ts';
