/**
 * The audit actions identity records (AUDIT-1), all in the platform log: sign-ins, sessions,
 * passwords, email, social sign-in, second factors, passkeys, account deletion and operators.
 * Declared by identity's module (`auditActions`); the audit log refuses an action no module declares.
 */
export const IDENTITY_AUDIT_ACTIONS = [
  // Accounts and sessions.
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
  // Social sign-in.
  'auth.social.login',
  'auth.social.linked',
  'auth.social.unlinked',
  'auth.social.failed',
  // Second factors.
  'mfa.enrolled',
  'mfa.removed',
  'mfa.verified',
  'mfa.failed',
  'mfa.recovery.used',
  'mfa.recovery.regenerated',
  // Passkeys: added, renamed, removed; a refused ceremony; a sign counter that went back (a cloned authenticator).
  'passkey.added',
  'passkey.renamed',
  'passkey.removed',
  'auth.passkey.failed',
  'auth.passkey.clone_warning',
  'account.deleted',
  // Operators.
  'operator.user.disabled',
  'operator.user.enabled',
  'operator.user.mfa_reset',
  'operator.setup.completed',
] as const;
