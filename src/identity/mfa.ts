/**
 * Second factors (AUTH-7): TOTP enrolment and verification, recovery codes, the second step of a
 * sign-in and step-up for sensitive actions.
 *
 * - The TOTP secret is sealed under the user's personal-data key, so deleting the account
 *   shreds it; it is shown once, in the enrolment answer, and never logged or audited.
 * - A code is accepted only for a time step later than the last one accepted for the factor,
 *   moved by one compare-and-set update, so a code works once even when sent twice at once.
 * - Guessing is bounded twice, both counted before the code is checked so parallel requests
 *   cannot slip past: a sign-in challenge allows CHALLENGE_MAX_ATTEMPTS codes, then it is spent;
 *   every user allows USER_LIMITS failed second-factor attempts per window across challenges,
 *   step-ups and enrolment (reserved before the check, given back when the factor is right, so
 *   correct sign-ins never use the budget up). With 3 of 10^6 codes valid at a time (±1 step), 30 tries a day give a guesser
 *   with the password about 1 chance in 11 000 per day, and the owner is mailed at the first
 *   refusal. Reaching a limit needs the password (or a session), so it cannot be used to lock
 *   out a user by email address alone.
 *
 * The parts: mfa-core.ts (shapes, attempt budget), mfa-proof.ts (checking a factor, step-up,
 * recovery codes), mfa-totp.ts (TOTP enrolment and removal), mfa-challenges.ts (the second step).
 */
import type { SealedColumn } from '../server/route.ts';
import { createMfaChallenges } from './mfa-challenges.ts';
import { createMfaCore, type MfaDeps } from './mfa-core.ts';
import { createMfaProof } from './mfa-proof.ts';
import { createMfaTotp } from './mfa-totp.ts';

export { CHALLENGE_MAX_ATTEMPTS, MFA_CHALLENGE_TTL_MS, STEP_UP_MAX_AGE_MS, USER_LIMITS } from './mfa-core.ts';
export type { MfaChallenge, MfaDeps, MfaStatus, SecondFactorMethod, SecondFactorProof, TotpEnrollment } from './mfa-core.ts';

/** The sealed TOTP secret column, for key rotation and the registry scan. */
export const MFA_SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'mfa_factors', column: 'secret_sealed', idColumn: 'id', tenantColumn: null, subjectColumn: 'user_id' },
];

export function createMfa(deps: MfaDeps) {
  const core = createMfaCore(deps);
  const { verifyProof, stepUp, regenerateRecoveryCodes } = createMfaProof(deps, core);
  const { startTotpEnrollment, confirmTotp, removeTotp } = createMfaTotp(deps, core);
  const { issueChallenge, completeChallenge, challengeUser, forgetUser } = createMfaChallenges(deps, core, verifyProof);
  return {
    hasActiveFactor: core.hasActiveFactor,
    status: core.status,
    startTotpEnrollment,
    confirmTotp,
    removeTotp,
    regenerateRecoveryCodes,
    requireFreshSecondFactor: core.requireFreshSecondFactor,
    stepUp,
    issueChallenge,
    completeChallenge,
    challengeUser,
    forgetUser,
  };
}

export type Mfa = ReturnType<typeof createMfa>;
