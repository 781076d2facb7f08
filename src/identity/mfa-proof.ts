/**
 * Second factors, proofs (AUTH-7, see mfa.ts): checking a TOTP code, a recovery code or a passkey
 * assertion under the attempt budget; step-up; a new set of recovery codes.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.ts';
import type { FactorRow, MfaCore, MfaDeps, Purpose, SecondFactorMethod, SecondFactorProof } from './mfa-core.ts';

export function createMfaProof(deps: MfaDeps, core: MfaCore) {
  const { db, sessions, now } = deps;
  const { note, tellOwner, hasActiveFactor, status, matchFactor, reserveAttempt, requireFreshSecondFactor } = core;

  /**
   * Checks a second factor of the user: a TOTP code of the confirmed factor, or an unused recovery
   * code (spent by this call). Audits the outcome; throws MFA_CODE_INVALID or MFA_THROTTLED.
   * The attempt is reserved first and given back on success.
   */
  async function verifyProof(userId: string, proof: SecondFactorProof, purpose: Purpose, flowOwner = ''): Promise<SecondFactorMethod> {
    const giveBack = await reserveAttempt(userId, purpose);
    const method = await checkProof(userId, proof, purpose, flowOwner);
    await giveBack();
    return method;
  }

  async function checkProof(userId: string, proof: SecondFactorProof, purpose: Purpose, flowOwner: string): Promise<SecondFactorMethod> {
    const t = new Date(now());
    if ('webauthn' in proof) {
      // The assertion must answer the challenge opened for this sign-in (its mfaToken) or this session's step-up.
      const passkeys = deps.passkeys;
      try {
        if (!passkeys || purpose === 'enroll') throw new AppError('PASSKEY_UNKNOWN');
        await passkeys.verifyAssertion(purpose === 'sign-in' ? 'mfa' : 'step-up', flowOwner, userId, proof.webauthn);
      } catch (err) {
        await note('mfa.failed', userId, { purpose, method: 'webauthn', reason: err instanceof AppError ? err.code : 'error' });
        throw err;
      }
      await note('mfa.verified', userId, { purpose, method: 'webauthn' });
      return 'webauthn';
    }
    if ('code' in proof) {
      const factor = (
        await db.query<FactorRow>(
          "select id, secret_sealed, confirmed_at from mfa_factors where user_id = $1 and kind = 'totp' and confirmed_at is not null and deleted_at is null",
          [userId],
        )
      ).rows[0];
      const step = factor ? await matchFactor(userId, factor, proof.code) : null;
      if (factor && step !== null) {
        // Compare-and-set: of two requests carrying the same code, exactly one moves last_step.
        const moved = await db.query('update mfa_factors set last_step = $2 where id = $1 and deleted_at is null and (last_step is null or last_step < $2)', [
          factor.id,
          step,
        ]);
        if (moved.rowCount === 1) {
          await note('mfa.verified', userId, { purpose, method: 'totp' });
          return 'totp';
        }
      }
      await note('mfa.failed', userId, { purpose, method: 'totp', reason: !factor ? 'no-factor' : step === null ? 'wrong-code' : 'replayed' });
      throw new AppError('MFA_CODE_INVALID');
    }
    const normalized = normalizeRecoveryCode(proof.recoveryCode);
    const spent = normalized
      ? await db.query('update recovery_codes set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null and voided_at is null', [
          userId,
          hashRecoveryCode(normalized),
          t,
        ])
      : { rowCount: 0 };
    if (spent.rowCount !== 1) {
      await note('mfa.failed', userId, { purpose, method: 'recovery', reason: 'wrong-code' });
      throw new AppError('MFA_CODE_INVALID');
    }
    const left = (await status(userId)).recoveryCodesLeft;
    await note('mfa.recovery.used', userId, { purpose, left });
    await tellOwner(
      userId,
      'A recovery code was used',
      `A recovery code of your Gatehouse account was used (${left} left).\nIf this was not you, change your password at ${deps.publicOrigin} and generate new recovery codes.`,
    );
    return 'recovery';
  }

  async function stepUp(userId: string, sessionId: string, proof: SecondFactorProof): Promise<SecondFactorMethod> {
    if (!(await hasActiveFactor(userId))) throw new AppError('MFA_NOT_ENROLLED');
    const method = await verifyProof(userId, proof, 'step-up', sessionId);
    await sessions.markSecondFactor(userId, sessionId);
    return method;
  }

  /** A new set of recovery codes (shown once); the old set stops working. Needs a factor, freshly verified. */
  async function regenerateRecoveryCodes(userId: string, sessionId: string): Promise<string[]> {
    // Recovery codes stand in for a factor, so they exist only beside one.
    if (!(await hasActiveFactor(userId))) throw new AppError('MFA_NOT_ENROLLED');
    await requireFreshSecondFactor(userId, sessionId);
    const codes = generateRecoveryCodes();
    const t = new Date(now());
    await db.transaction(async (tx) => {
      await tx.query('update recovery_codes set voided_at = $2 where user_id = $1 and voided_at is null', [userId, t]);
      for (const code of codes) {
        const normalized = normalizeRecoveryCode(code);
        if (!normalized) throw new Error('generated recovery code does not normalise');
        await tx.query('insert into recovery_codes (id, user_id, code_hash, created_at) values ($1, $2, $3, $4)', [randomUUID(), userId, hashRecoveryCode(normalized), t]);
      }
    });
    await note('mfa.recovery.regenerated', userId, { count: codes.length });
    await tellOwner(
      userId,
      'New recovery codes',
      `New recovery codes were generated for your Gatehouse account; the earlier ones no longer work.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
    );
    return codes;
  }

  return { verifyProof, stepUp, regenerateRecoveryCodes };
}
