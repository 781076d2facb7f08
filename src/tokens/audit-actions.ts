/**
 * The audit action of client tokens (AUDIT-1, GW-6), in the org's log: a short-lived client token
 * minted from an API key (its id, subject, scopes and expiry; never the token).
 */
export const TOKENS_AUDIT_ACTIONS = [
  'clienttoken.minted',
  'clienttoken.revoked',
] as const;
