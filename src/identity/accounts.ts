/**
 * Accounts (AUTH-1, AUTH-2, AUTH-5, AUTH-6, AUTH-7, AUTH-10): sign-up with email verification,
 * sign-in with throttling and lockout and, for users with a second factor, a second step, password
 * reset and change, the first-run operator setup, export and deletion. Responses never reveal whether an email has an account: sign-up and reset
 * answer the same way for both, and sign-in spends an Argon2 verification either way.
 */
import { createAccountsCore, type AccountsDeps } from './accounts-core.ts';
import { createLifecycle } from './accounts-lifecycle.ts';
import { createOperatorActions } from './accounts-operator.ts';
import { createPasswordFlows } from './accounts-password.ts';
import { createSetup } from './accounts-setup.ts';
import { createSignIn } from './accounts-sign-in.ts';
import { createSignup } from './accounts-signup.ts';

export { normalizeEmail, type AccountLifecycle, type AccountsDeps, type PublicUser, type SecondFactorRequired, type SignedIn } from './accounts-core.ts';
export type { IdentityAudit } from './identity-audit.ts';

export function createAccounts(deps: AccountsDeps) {
  const core = createAccountsCore(deps);
  return { ...createSignup(core), ...createSignIn(core), ...createPasswordFlows(core), ...createLifecycle(core), ...createOperatorActions(core), ...createSetup(core) };
}

export type Accounts = ReturnType<typeof createAccounts>;
