/** Error codes of accounts, sessions, second factors, email change and social sign-in (AUTH-1..8, AUTH-10). */
export const IDENTITY_ERROR_CODES = {
  RETURN_URL_NOT_ALLOWED: {
    status: 400,
    message: 'This return URL is not allowed.',
    doc: 'A `returnTo` of a social or SSO sign-in that is neither a console path on this node nor under one of `auth.returnUrls` (or has credentials, a backslash or control characters in it).',
  },
  INVALID_CREDENTIALS: { status: 401, message: 'Email or password is incorrect.', doc: 'Sign-in failed. The same answer for an unknown email and a wrong password.' },
  LOGIN_THROTTLED: {
    status: 429,
    message: 'Too many sign-in attempts; retry later.',
    doc: 'Failed sign-ins for this account or from this IP crossed the threshold; `Retry-After` says when to retry. Unknown emails are throttled the same way.',
  },
  EMAIL_NOT_VERIFIED: { status: 403, message: 'Verify your email address first.', doc: 'Correct credentials, but the email address is not verified yet.' },
  ACCOUNT_DISABLED: { status: 403, message: 'This account is disabled.', doc: 'An operator disabled the account.' },
  TOKEN_INVALID: { status: 400, message: 'The code is invalid, expired or already used.', doc: 'An email verification, password reset or setup code that is unknown, expired or used.' },
  REFRESH_TOKEN_INVALID: { status: 401, message: 'The refresh token is invalid or expired.', doc: 'Unknown, malformed or expired refresh token, or its session ended.' },
  REFRESH_TOKEN_REUSED: {
    status: 401,
    message: 'The refresh token was already used; the session has been ended.',
    doc: 'A refresh token was presented again after its grace window: treated as theft, the whole session is revoked.',
  },
  PASSWORD_TOO_SHORT: { status: 400, message: 'The password is too short.', doc: 'Shorter than `auth.passwordMinLength` code points.' },
  PASSWORD_TOO_LONG: { status: 400, message: 'The password is too long.', doc: 'Longer than `auth.passwordMaxLength` code points or 4096 bytes.' },
  PASSWORD_COMMON: { status: 400, message: 'This password is too common.', doc: 'On the shipped list of common and breached passwords, or the placeholder of one of Gatehouse\'s own example commands (the first-run `curl`).' },
  PASSWORD_BREACHED: { status: 400, message: 'This password appeared in a data breach.', doc: 'The optional online breach check found it.' },
  PASSWORD_TOO_WEAK: { status: 400, message: 'This password is too easy to guess.', doc: 'Below `auth.passwordMinStrength` by the strength estimate.' },
  PASSWORD_CHECK_UNAVAILABLE: {
    status: 503,
    message: 'The password could not be checked; retry later.',
    doc: 'The breach check is fail-closed and could not be reached.',
  },
  MFA_CODE_INVALID: {
    status: 401,
    message: 'The second-factor code is wrong or was already used.',
    doc: 'A TOTP code that matches no time step within one step of the server\'s clock, one already accepted (replay), or an unknown or used recovery code.',
  },
  MFA_TOKEN_INVALID: {
    status: 401,
    message: 'The sign-in has expired or was already completed; sign in again.',
    doc: 'The `mfaToken` of the second sign-in step is unknown, expired (5 minutes), already used, or spent by too many wrong codes.',
  },
  MFA_STEP_UP_REQUIRED: {
    status: 403,
    message: 'Confirm with your second factor first.',
    doc: 'A sensitive action (account deletion, removing a factor, new recovery codes) needs a second factor verified in this session within the last 5 minutes: `POST /v1/me/mfa/step-up`.',
  },
  MFA_ALREADY_ENROLLED: { status: 409, message: 'A TOTP factor is already active.', doc: 'Remove the active TOTP factor before enrolling another.' },
  MFA_NOT_ENROLLED: { status: 409, message: 'No second factor is active.', doc: 'Step-up and recovery codes need an active second factor.' },
  MFA_THROTTLED: {
    status: 429,
    message: 'Too many failed second-factor attempts; retry later.',
    doc: 'The user\'s failed second-factor attempts (10 per 15 minutes, 30 per day; a correct factor does not count) are used up; `Retry-After` says when to retry. The owner is mailed.',
  },
  REAUTHENTICATION_REQUIRED: {
    status: 403,
    message: 'Sign in again first.',
    doc: 'An account without a password changes its email address only within 5 minutes of signing in.',
  },
  EMAIL_UNCHANGED: { status: 400, message: 'That is already the account\'s email address.', doc: 'An email change to the address the account already has.' },
  EMAIL_TAKEN: {
    status: 409,
    message: 'Another account took this address; nothing was changed.',
    doc: 'An email change was confirmed after another account started using the address. The code is spent; request a change again.',
  },
  SOCIAL_PROVIDER_UNKNOWN: { status: 404, message: 'No such sign-in provider.', doc: 'The provider id in the path is not configured in `social.providers`.' },
  SOCIAL_STATE_INVALID: {
    status: 400,
    message: 'The sign-in could not be matched to this browser; start again.',
    doc: 'The social callback came without the state cookie of the browser that started it, with a state that is not that cookie\'s, after its expiry, or a second time.',
  },
  SOCIAL_EXCHANGE_FAILED: {
    status: 400,
    message: 'The provider\'s answer could not be accepted; start again.',
    doc: 'The code exchange or the id_token check failed: a code already spent, a wrong PKCE verifier, an id_token from another issuer or audience, a wrong nonce, an expired token, or a provider error.',
  },
  SOCIAL_EMAIL_UNVERIFIED: {
    status: 403,
    message: 'The provider did not confirm this email address.',
    doc: 'The provider account has no email it verified: it neither links to an account nor creates one.',
  },
  SOCIAL_LAST_SIGN_IN_METHOD: {
    status: 409,
    message: 'This is the only way to sign in to this account.',
    doc: 'The account has no password and no other linked provider: set a password (password reset) before removing this link.',
  },
  SOCIAL_LINK_INVALID: { status: 400, message: 'The link request is invalid, expired or already used.', doc: 'A `linkToken` that is unknown, expired (10 minutes) or used.' },
} as const;
