/**
 * The audit actions of the trust feature (AUDIT-1), in the platform log: configuration reloads
 * (OPS-3: the fingerprint and the names of the options that changed, never values) and generated
 * trust reports (OPS-4: the summary and the key that signed it).
 */
export const TRUST_AUDIT_ACTIONS = [
  'config.reloaded',
  'config.reload_refused',
  'trust.report.generated',
] as const;
