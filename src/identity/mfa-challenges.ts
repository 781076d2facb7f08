/**
 * Second factors, the second step of a sign-in (AUTH-7, see mfa.ts): a single-use challenge token
 * with a bounded number of attempts, completed by a second factor; and what ends with an account.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import type { Queryable } from '../store/db-types.ts';
import { hashToken } from './sessions.ts';
import { CHALLENGE_MAX_ATTEMPTS, CHALLENGE_PREFIX, CHALLENGE_RE, MFA_CHALLENGE_TTL_MS, type MfaChallenge, type MfaCore, type MfaDeps, type SecondFactorMethod, type SecondFactorProof } from './mfa-core.ts';

export function createMfaChallenges(deps: MfaDeps, core: MfaCore, verifyProof: (userId: string, proof: SecondFactorProof, purpose: 'sign-in', flowOwner: string) => Promise<SecondFactorMethod>) {
  const { db, now } = deps;
  const { note, status } = core;

  /** After the password step: a single-use token for the second step of this sign-in. */
  async function issueChallenge(userId: string, mode: 'bearer' | 'cookie'): Promise<MfaChallenge> {
    const token = CHALLENGE_PREFIX + randomBytes(32).toString('base64url');
    const t = now();
    await db.query('insert into mfa_challenges (id, user_id, token_hash, mode, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)', [
      randomUUID(),
      userId,
      hashToken(token),
      mode,
      new Date(t + MFA_CHALLENGE_TTL_MS),
      new Date(t),
    ]);
    const s = await status(userId);
    const passkey = (await deps.passkeys?.hasPasskey(userId)) === true;
    const methods: SecondFactorMethod[] = [
      ...(s.totp ? (['totp'] as const) : []),
      ...(s.recoveryCodesLeft > 0 ? (['recovery'] as const) : []),
      ...(passkey ? (['webauthn'] as const) : []),
    ];
    return { mfaToken: token, methods, expiresIn: Math.floor(MFA_CHALLENGE_TTL_MS / 1000) };
  }

  /**
   * The second step of a sign-in: spends the challenge when the factor checks out and returns
   * whose sign-in it completes. Throws MFA_TOKEN_INVALID, MFA_CODE_INVALID or MFA_THROTTLED.
   */
  async function completeChallenge(mfaToken: string, proof: SecondFactorProof): Promise<{ userId: string; mode: 'bearer' | 'cookie'; method: SecondFactorMethod }> {
    if (!CHALLENGE_RE.test(mfaToken)) throw new AppError('MFA_TOKEN_INVALID');
    const tokenHash = hashToken(mfaToken);
    const t = new Date(now());
    // Each code takes one of the challenge's attempts before it is checked, in one statement, so
    // parallel guesses cannot exceed them.
    const taken = await db.query<{ id: string; user_id: string; mode: 'bearer' | 'cookie' }>(
      'update mfa_challenges set attempts = attempts + 1 where token_hash = $1 and used_at is null and expires_at > $2 and attempts < $3 returning id, user_id, mode',
      [tokenHash, t, CHALLENGE_MAX_ATTEMPTS],
    );
    const challenge = taken.rows[0];
    if (!challenge) {
      const known = (await db.query<{ user_id: string }>('select user_id from mfa_challenges where token_hash = $1', [tokenHash])).rows[0];
      if (known) await note('mfa.failed', known.user_id, { purpose: 'sign-in', reason: 'challenge-spent' });
      throw new AppError('MFA_TOKEN_INVALID');
    }
    const method = await verifyProof(challenge.user_id, proof, 'sign-in', tokenHash);
    // Single use: of two completions racing with two valid factors, one signs in.
    const spent = await db.query('update mfa_challenges set used_at = $2 where id = $1 and used_at is null', [challenge.id, t]);
    if (spent.rowCount !== 1) throw new AppError('MFA_TOKEN_INVALID');
    return { userId: challenge.user_id, mode: challenge.mode, method };
  }

  /**
   * Whose open sign-in challenge this is, without spending an attempt (the passkey options of the
   * second step), with the owner key its passkey challenge is filed under. Throws MFA_TOKEN_INVALID.
   */
  async function challengeUser(mfaToken: string): Promise<{ userId: string; flowOwner: string }> {
    if (!CHALLENGE_RE.test(mfaToken)) throw new AppError('MFA_TOKEN_INVALID');
    const tokenHash = hashToken(mfaToken);
    const r = await db.query<{ user_id: string }>('select user_id from mfa_challenges where token_hash = $1 and used_at is null and expires_at > $2 and attempts < $3', [
      tokenHash,
      new Date(now()),
      CHALLENGE_MAX_ATTEMPTS,
    ]);
    const row = r.rows[0];
    if (!row) throw new AppError('MFA_TOKEN_INVALID');
    return { userId: row.user_id, flowOwner: tokenHash };
  }

  /** Account deletion: factors, passkeys, codes and open challenges end with the account (the secret's key is shredded separately). */
  async function forgetUser(tx: Queryable, userId: string, at: Date): Promise<void> {
    await tx.query('delete from passkeys where user_id = $1', [userId]);
    await tx.query('update mfa_factors set deleted_at = coalesce(deleted_at, $2) where user_id = $1', [userId, at]);
    await tx.query('update recovery_codes set voided_at = coalesce(voided_at, $2) where user_id = $1', [userId, at]);
    await tx.query('update mfa_challenges set used_at = coalesce(used_at, $2) where user_id = $1', [userId, at]);
  }

  return { issueChallenge, completeChallenge, challengeUser, forgetUser };
}
