/**
 * What operators do to an account (AUTH-10): disable it (its sessions end at once), reset the second
 * factors of a user who lost them.
 */
import { AppError } from '../server/errors.ts';
import type { AccountsCore } from './accounts-core.ts';

export function createOperatorActions(core: AccountsCore) {
  const { deps, note, userById } = core;
  const { db, sessions, mfa, mailer, logger, now } = deps;

  async function setOperatorDisabled(operatorId: string, targetId: string, disabled: boolean): Promise<void> {
    const op = await userById(operatorId);
    if (!op?.is_operator) throw new AppError('FORBIDDEN');
    const r = await db.query("update users set status = $2, updated_at = $3 where id = $1 and status <> 'deleted'", [targetId, disabled ? 'disabled' : 'active', new Date(now())]);
    if (r.rowCount === 0) throw new AppError('NOT_FOUND', 'No such user.');
    if (disabled) await sessions.revokeAllForUser(targetId, 'disabled-by-operator');
    await note(disabled ? 'operator.user.disabled' : 'operator.user.enabled', targetId);
    logger.info({ event: disabled ? 'user_disabled' : 'user_enabled', userId: targetId, operatorId }, 'operator changed a user status');
  }

  /**
   * Operators: remove every second factor of a user who lost them (authenticator and recovery
   * codes): TOTP, passkeys, recovery codes, pending sign-in challenges and remembered devices go,
   * every session of the user ends, the user is mailed and the reset audited. The user signs in
   * with the password alone and enrols again (an org that requires MFA asks for it). The operator
   * needs a fresh second factor of their own, and resets another user's factors only.
   */
  async function resetSecondFactors(operatorId: string, operatorSessionId: string, targetId: string): Promise<void> {
    const op = await userById(operatorId);
    if (!op?.is_operator) throw new AppError('FORBIDDEN');
    if (operatorId === targetId) throw new AppError('FORBIDDEN', 'Operators reset other users\' factors; remove your own from /v1/me.');
    await mfa.requireFreshSecondFactor(operatorId, operatorSessionId);
    const target = await userById(targetId);
    if (!target) throw new AppError('NOT_FOUND', 'No such user.');
    const t = new Date(now());
    await db.transaction(async (tx) => {
      await mfa.forgetUser(tx, targetId, t);
      await tx.query('update devices set second_factor_until = null where user_id = $1', [targetId]);
    });
    await sessions.revokeAllForUser(targetId, 'mfa-reset-by-operator');
    await note('operator.user.mfa_reset', targetId);
    await mailer.send({
      to: target.email,
      kind: 'notice',
      subject: 'Your second factors were reset',
      text: `An operator removed every second factor of your Gatehouse account (authenticator apps, passkeys and recovery codes) and signed out all sessions.\nSign in with your password and set up a second factor again. If you did not ask for this, contact your administrator at once.`,
    });
    logger.info({ event: 'mfa_reset_by_operator', userId: targetId, operatorId }, 'operator reset a user\'s second factors');
  }

  return { setOperatorDisabled, resetSecondFactors };
}
