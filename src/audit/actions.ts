/**
 * Every audit action, once (AUDIT-1). Org actions go to that org's log; account, sign-in,
 * operator and key actions to the platform log.
 */
export const AUDIT_ACTIONS = [
  // Accounts and sessions (platform log).
  'auth.login.succeeded',
  'auth.login.failed',
  'auth.lockout',
  'auth.logout',
  'auth.logout_all',
  'auth.session.revoked',
  'auth.refresh.replayed',
  'auth.password.changed',
  'auth.password.reset',
  'auth.email.verified',
  'auth.email.change_requested',
  'auth.email.changed',
  // Social sign-in (platform log).
  'auth.social.login',
  'auth.social.linked',
  'auth.social.unlinked',
  'auth.social.failed',
  // Second factors (platform log).
  'mfa.enrolled',
  'mfa.removed',
  'mfa.verified',
  'mfa.failed',
  'mfa.recovery.used',
  'mfa.recovery.regenerated',
  // Passkeys (platform log): added, renamed, removed; a refused ceremony; a sign counter that went back (a cloned authenticator).
  'passkey.added',
  'passkey.renamed',
  'passkey.removed',
  'auth.passkey.failed',
  'auth.passkey.clone_warning',
  'account.deleted',
  // Operators (platform log).
  'operator.user.disabled',
  'operator.user.enabled',
  'operator.user.mfa_reset',
  'operator.setup.completed',
  // A node started: the fingerprint of its effective configuration (secrets masked) shows changes between starts.
  'node.started',
  // Configuration reloads (OPS-3): the fingerprint and the names of the options that changed, never values.
  'config.reloaded',
  'config.reload_refused',
  // A trust report was generated (OPS-4): its summary and the key that signed it.
  'trust.report.generated',
  // Organizations (org log).
  'org.created',
  'org.updated',
  'org.deleted',
  'org.ownership.transferred',
  'member.role.changed',
  'member.removed',
  'member.left',
  'invitation.created',
  'invitation.revoked',
  'invitation.accepted',
  'workspace.created',
  'workspace.updated',
  'workspace.deleted',
  'workspace.member.role.set',
  'workspace.member.role.cleared',
  // API keys, provider credentials and limits (org log).
  'apikey.created',
  'apikey.revoked',
  // A short-lived client token minted from an API key (GW-6): its id, subject, scopes and expiry; never the token.
  'clienttoken.minted',
  'clienttoken.revoked',
  'provider.credential.set',
  'provider.credential.deleted',
  'limits.changed',
  // Input guard (org log): flagged, redacted and blocked AI calls (rule names and score, never the
  // prompt), temporary blocks earned by strikes and lifted by admins, policy changes.
  'guard.flagged',
  'guard.redacted',
  'guard.blocked',
  'guard.subject.blocked',
  'guard.block.lifted',
  'guard.policy.changed',
  // MCP (org log): upstream servers, tool reviews, per-key tool allowlists, and every tool call (sizes, never content).
  'mcp.server.set',
  'mcp.server.deleted',
  'mcp.tools.synced',
  'mcp.tool.reviewed',
  'mcp.key_tools.set',
  'mcp.tool.called',
  // Budgets (org log): set or deleted by an admin; a soft limit crossed (once per period); a hard
  // limit refusing calls (once per budget, period and node).
  'budget.set',
  'budget.deleted',
  'budget.soft_limit',
  'budget.exceeded',
  // Guards (org log): a member refused by the role matrix.
  'authz.denied',
  // Enterprise SSO (org log): connections, domains (claimed by the org, verified by an operator),
  // the SSO-required setting, sign-ins, just-in-time provisioning and refused sign-ins.
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
  // Keys: rotations (platform log, from the CLI), shredding (the org's log).
  'keys.rotated',
  // The backup drill's marker writes (OPS-1): the restored copy is searched for them to measure RPO.
  'backup.drill_marker',
  'keys.shredded',
  // Inbound webhooks (the org's log, or the platform log for platform endpoints): endpoints, their secrets, redeliveries.
  'webhook.endpoint.created',
  'webhook.endpoint.deleted',
  'webhook.secret.added',
  'webhook.secret.removed',
  'webhook.destination_secret.rotated',
  'webhook.event.redelivered',
] as const;

export type AuditAction = (typeof AUDIT_ACTIONS)[number];

export function isAuditAction(value: unknown): value is AuditAction {
  return typeof value === 'string' && (AUDIT_ACTIONS as readonly string[]).includes(value);
}
