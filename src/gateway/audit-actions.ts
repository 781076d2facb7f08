/**
 * The audit actions of the AI gateway (AUDIT-1), in the org's log: API keys, provider credentials
 * and limits.
 */
export const GATEWAY_AUDIT_ACTIONS = [
  'apikey.created',
  'apikey.revoked',
  'provider.credential.set',
  'provider.credential.deleted',
  'limits.changed',
] as const;
