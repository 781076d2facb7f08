/**
 * Passwords (AUTH-1, AUTH-2): reset by emailed code, change while signed in, and the password again
 * before a change to how the account signs in.
 */
import { AppError } from '../server/errors.ts';
import { deviceIdsOf, forgetRememberedDevices } from './devices.ts';
import { hashPassword, verifyPassword } from './passwords.ts';
import { hashToken } from './sessions.ts';
import { accountKey } from './throttle.ts';
import { normalizeEmail, publicUser, type PublicUser, type AccountsCore } from './accounts-core.ts';

export function createPasswordFlows(core: AccountsCore) {
  const { deps, note, argon2, throttle, tokenTtlMs, mayMail, acceptablePassword, userByEmail, userById, issueEmailToken, consumeEmailToken } = core;
  const { db, sessions, mailer, now } = deps;

  async function requestPasswordReset(rawEmail: string): Promise<void> {
    const email = normalizeEmail(rawEmail);
    const user = await userByEmail(email);
    if (!user || user.status !== 'active') return;
    if (!(await mayMail('password-reset', user.email))) return;
    const token = await issueEmailToken(user.id, 'password-reset', tokenTtlMs);
    await mailer.send({
      to: user.email,
      kind: 'password-reset',
      subject: 'Reset your password',
      text:
        `A password reset was requested for your Gatehouse account. Choose a new password within ${Math.round(tokenTtlMs / 60000)} minutes at:\n\n` +
        `${deps.publicOrigin}/console/reset-password?token=${encodeURIComponent(token)}\n\n` +
        `Or use this code:\n\n${token}\n\nPOST ${deps.publicOrigin}/v1/auth/password-reset/confirm {"token": "<code>", "password": "<new password>"}\nIf you did not ask for this, ignore this message.`,
    });
  }

  async function confirmPasswordReset(token: string, password: string): Promise<void> {
    // Check the password before spending the token, so a refused password can be retried.
    const probe = await db.query<{ user_id: string; email: string }>(
      'select t.user_id, u.email from email_tokens t join users u on u.id = t.user_id where t.token_hash = $1 and t.purpose = $2 and t.used_at is null and t.expires_at > $3',
      [hashToken(token), 'password-reset', new Date(now())],
    );
    const row = probe.rows[0];
    if (!row) throw new AppError('TOKEN_INVALID');
    await acceptablePassword(password, [row.email]);
    const userId = await consumeEmailToken(token, 'password-reset');
    if (!userId) throw new AppError('TOKEN_INVALID');
    await db.query('update users set password_hash = $2, email_verified_at = coalesce(email_verified_at, $3), updated_at = $3 where id = $1', [
      userId,
      await hashPassword(password, argon2),
      new Date(now()),
    ]);
    await sessions.revokeAllForUser(userId, 'password-reset');
    // The owner proved control of the mailbox: the sign-in lock (unknown devices and each device) ends.
    await throttle.clearAccount(accountKey(row.email), await deviceIdsOf(db, userId));
    // Account recovery: no device skips the second step on the strength of an earlier sign-in.
    await forgetRememberedDevices(db, userId);
    await note('auth.password.reset', userId);
    await mailer.send({
      to: row.email,
      kind: 'notice',
      subject: 'Your password was reset',
      text: `The password of your Gatehouse account was reset and every session was signed out.\nIf this was not you, reset it again at ${deps.publicOrigin} and contact your administrator.`,
    });
  }

  async function changePassword(userId: string, sessionId: string, current: string, next: string): Promise<void> {
    const user = await userById(userId);
    if (!user?.password_hash || !(await verifyPassword(user.password_hash, current))) throw new AppError('INVALID_CREDENTIALS');
    await acceptablePassword(next, [user.email]);
    await db.query('update users set password_hash = $2, updated_at = $3 where id = $1', [userId, await hashPassword(next, argon2), new Date(now())]);
    await sessions.revokeAllForUser(userId, 'password-change', sessionId);
    await sessions.markReauthenticated(sessionId);
    await note('auth.password.changed', userId);
    await mailer.send({
      to: user.email,
      kind: 'notice',
      subject: 'Your password was changed',
      text: `The password of your Gatehouse account was changed; your other sessions were signed out.\nIf this was not you, reset your password at ${deps.publicOrigin}.`,
    });
  }

  /**
   * The password again, for a change to how the account signs in (adding a second factor): a
   * stolen session alone cannot enrol the thief's authenticator.
   */
  async function reauthenticate(userId: string, sessionId: string, password: string): Promise<PublicUser> {
    const user = await userById(userId);
    if (!user?.password_hash || !(await verifyPassword(user.password_hash, password))) throw new AppError('INVALID_CREDENTIALS');
    await sessions.markReauthenticated(sessionId);
    return publicUser(user);
  }

  return { requestPasswordReset, confirmPasswordReset, changePassword, reauthenticate };
}
