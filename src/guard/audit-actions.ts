/**
 * The audit actions of the input guard (AUDIT-1), in the org's log: flagged, redacted and blocked
 * AI calls (rule names and score, never the prompt), temporary blocks earned by strikes and lifted
 * by admins, policy changes.
 */
export const GUARD_AUDIT_ACTIONS = [
  'guard.flagged',
  'guard.redacted',
  'guard.blocked',
  'guard.subject.blocked',
  'guard.block.lifted',
  'guard.policy.changed',
] as const;
