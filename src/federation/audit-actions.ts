/**
 * The audit actions of enterprise SSO (AUDIT-1), in the org's log: connections, domains (claimed by
 * the org, verified by an operator), the SSO-required setting, sign-ins, just-in-time provisioning
 * and refused sign-ins.
 */
export const SSO_AUDIT_ACTIONS = [
  'sso.connection.created',
  'sso.connection.updated',
  'sso.connection.deleted',
  'sso.domain.claimed',
  'sso.domain.verified',
  'sso.domain.removed',
  'sso.settings.changed',
  'sso.login',
  'sso.user.provisioned',
  'sso.failed',
] as const;
