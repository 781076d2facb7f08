/**
 * Sign-in (AUTH-3, AUTH-5, AUTH-6, AUTH-7): by password with throttling and lockout, the second step
 * for users with a second factor, and sign-in of a user something else proved (a provider, a
 * passkey, SSO).
 */
import { AppError } from '../server/errors.ts';
import { recognisedDeviceId, recordDevice, rememberSecondFactor, secondFactorRemembered } from './devices.ts';
import type { SecondFactorProof } from './mfa.ts';
import { dummyVerify, hashPassword, needsRehash, verifyPassword } from './passwords.ts';
import type { SessionContext } from './sessions.ts';
import { accountKey } from './throttle.ts';
import { normalizeEmail, publicUser, SIGN_IN_USER, type SecondFactorRequired, type SignedIn, type UserRow, type AccountsCore } from './accounts-core.ts';

export function createSignIn(core: AccountsCore) {
  const { deps, note, argon2, throttle, signInUserByEmail, userById } = core;
  const { db, sessions, mfa, mailer, config, logger, now } = deps;

  async function login(input: { email: string; password: string }, ctx: SessionContext & { deviceCookie?: string }): Promise<SignedIn | SecondFactorRequired> {
    const email = normalizeEmail(input.email);
    const account = accountKey(email);
    const user = await signInUserByEmail(email);
    // A device this account signed in on before has a bucket of its own: guesses from elsewhere cannot lock it out.
    const deviceId = await recognisedDeviceId(db, user?.id, ctx.deviceCookie);
    // Reserved before Argon2 runs: parallel guesses cannot all pass a check that none has counted yet.
    const attempt = await throttle.reserve(account, ctx.ip, deviceId);
    const valid = user?.password_hash ? await verifyPassword(user.password_hash, input.password) : (await dummyVerify(input.password, argon2), false);
    if (!user || !valid) {
      const { locked } = await attempt.failed();
      await note('auth.login.failed', user?.id ?? null, { account, recognisedDevice: deviceId !== null });
      if (locked) await note('auth.lockout', user?.id ?? null, { account, recognisedDevice: deviceId !== null });
      if (locked && user) {
        await mailer.send({
          to: user.email,
          kind: 'lockout',
          subject: 'Your account was locked',
          text: deviceId
            ? `After repeated failed sign-ins on one of your own devices, sign-ins from that device are paused for ${Math.round(config.auth.lockoutSeconds / 60)} minutes.\nA password reset at ${deps.publicOrigin} lifts the lock.`
            : `After repeated failed sign-ins from devices this account has not used, such sign-ins are paused for ${Math.round(config.auth.lockoutSeconds / 60)} minutes.\nDevices you signed in on before are not affected. If this was not you, nothing else is needed; a password reset at ${deps.publicOrigin} lifts the lock.`,
        });
        logger.warn({ event: 'account_locked', userId: user.id, recognisedDevice: deviceId !== null }, 'account locked after repeated failed sign-ins');
      }
      throw new AppError('INVALID_CREDENTIALS');
    }
    await attempt.succeeded();
    if (user.status === 'disabled') throw new AppError('ACCOUNT_DISABLED');
    if (user.email_verified_at === null) throw new AppError('EMAIL_NOT_VERIFIED');
    // Only now, with the password proven: the refusal tells nothing to someone without it.
    for (const policy of deps.lifecycle?.signInPolicy ?? []) await policy(user.id, 'password');
    if (user.password_hash && needsRehash(user.password_hash, argon2)) {
      await db.query('update users set password_hash = $2, updated_at = $3 where id = $1', [user.id, await hashPassword(input.password, argon2), new Date(now())]);
    }
    // A user with a second factor is asked for it, unless this device verified one at sign-in within
    // auth.rememberSecondFactorDays (and, with auth.newDeviceRequiresSecondFactor, from a network it
    // has used). The device is recorded only after the second step: recording it now would let a
    // password alone make a device known.
    if (user.has_factor) {
      const remembered =
        config.auth.rememberSecondFactorDays > 0 &&
        (await secondFactorRemembered(db, user.id, ctx.deviceCookie, ctx.ip, config.auth.newDeviceRequiresSecondFactor, new Date(now())));
      if (!remembered) return { mfaRequired: true, ...(await mfa.issueChallenge(user.id, ctx.mode)) };
      return finishSignIn(user, ctx, false, 'remembered-device');
    }
    return finishSignIn(user, ctx, false);
  }

  /** The second step of a sign-in: the challenge's user signs in in the mode the password step asked for. */
  async function completeSecondFactor(mfaToken: string, proof: SecondFactorProof, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }): Promise<SignedIn & { mode: 'bearer' | 'cookie' }> {
    const { userId, mode, method } = await mfa.completeChallenge(mfaToken, proof);
    const user = await userById(userId);
    // Disabled between the two steps: the second one does not sign in either.
    if (!user) throw new AppError('MFA_TOKEN_INVALID');
    if (user.status === 'disabled') throw new AppError('ACCOUNT_DISABLED');
    const signedIn = await finishSignIn(user, { ...ctx, mode }, true, method);
    const days = config.auth.rememberSecondFactorDays;
    if (days > 0) await rememberSecondFactor(db, user.id, signedIn.device.deviceId, new Date(now() + days * 86_400_000));
    return { ...signedIn, mode };
  }

  async function finishSignIn(user: UserRow, ctx: SessionContext & { deviceCookie?: string }, secondFactor: boolean, method?: string): Promise<SignedIn> {
    const device = await recordDevice(db, user.id, ctx.deviceCookie, ctx.ip, ctx.userAgent);
    if ((device.newDevice || device.newNetwork) && !device.firstEver) {
      await mailer.send({
        to: user.email,
        kind: 'new-device',
        subject: 'New sign-in to your account',
        text: `Your Gatehouse account was signed in to from ${device.newDevice ? 'a new device' : 'a new network'} (${ctx.userAgent?.slice(0, 120) ?? 'unknown client'}).\nIf this was not you, sign out all sessions and change your password.`,
      });
      logger.info({ event: 'new_device_sign_in', userId: user.id, newDevice: device.newDevice, newNetwork: device.newNetwork }, 'sign-in from a new device or network');
    }
    // A new session counts as a fresh password entry (sessions.create records reauth_at).
    const tokens = await sessions.create(user.id, { mode: ctx.mode, ip: ctx.ip, userAgent: ctx.userAgent, deviceId: device.deviceId, secondFactor });
    await note('auth.login.succeeded', user.id, {
      session: tokens.sessionId,
      newDevice: device.newDevice,
      newNetwork: device.newNetwork,
      ...(method ? { secondFactor: method } : {}),
    });
    return { tokens, device, user: publicUser(user) };
  }

  /**
   * Signs in a user whose identity something other than a password proved (a social provider):
   * a user with a second factor still gets the second step, unless the proof was multi-factor
   * itself (a user-verified passkey: `multiFactor`), which signs in with the second factor done.
   */
  async function signInVerifiedUser(
    userId: string,
    ctx: SessionContext & { deviceCookie?: string },
    method: string,
    options: { multiFactor?: boolean } = {},
  ): Promise<SignedIn | SecondFactorRequired> {
    const user = (
      await db.query<UserRow & { has_factor: boolean }>(
        `${SIGN_IN_USER} where u.id = $1 and u.status <> 'deleted'`,
        [userId],
      )
    ).rows[0];
    if (!user) throw new AppError('INVALID_CREDENTIALS');
    if (user.status === 'disabled') throw new AppError('ACCOUNT_DISABLED');
    for (const policy of deps.lifecycle?.signInPolicy ?? []) await policy(user.id, method);
    if (options.multiFactor === true) return finishSignIn(user, ctx, true, method);
    if (user.has_factor) return { mfaRequired: true, ...(await mfa.issueChallenge(user.id, ctx.mode)) };
    return finishSignIn(user, ctx, false, method);
  }

  return { login, completeSecondFactor, signInVerifiedUser };
}
