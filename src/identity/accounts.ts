/**
 * Accounts (AUTH-1, AUTH-2, AUTH-5, AUTH-6, AUTH-7, AUTH-10): sign-up with email verification,
 * sign-in with throttling and lockout and, for users with a second factor, a second step, password
 * reset and change, the first-run operator setup, export and deletion. Responses never reveal whether an email has an account: sign-up and reset
 * answer the same way for both, and sign-in spends an Argon2 verification either way.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import {
  deviceIdsOf,
  forgetRememberedDevices,
  listDevices,
  recognisedDeviceId,
  recordDevice,
  rememberSecondFactor,
  secondFactorRemembered,
  type DeviceSighting,
} from './devices.ts';
import type { Mailer } from './mailer.ts';
import type { MfaChallenge, Mfa, MfaStatus, SecondFactorProof } from './mfa.ts';
import {
  checkNewPassword,
  dummyVerify,
  hashPassword,
  needsRehash,
  verifyPassword,
  DEFAULT_PASSWORD_POLICY,
  type Argon2Params,
  type PasswordPolicy,
} from './passwords.ts';
import { hashToken, type IssuedTokens, type SessionContext, type Sessions } from './sessions.ts';
import { accountKey, createLoginThrottle } from './throttle.ts';
import type { IdentityAudit } from './identity-audit.ts';

export interface AccountsDeps {
  db: Db;
  kv: Kv;
  keyring: Keyring;
  sessions: Sessions;
  mfa: Mfa;
  mailer: Mailer;
  config: Config;
  logger: Logger;
  now: () => number;
  /** Absolute base URL for links in mail. */
  publicOrigin: string;
  /** What other features do when an account is deleted (registered after creation). */
  lifecycle?: AccountLifecycle;
  /** Appends an account event to the platform audit log. */
  audit?: IdentityAudit;
}

export type { IdentityAudit } from './identity-audit.ts';

/**
 * Hooks run around account deletion: `check` may refuse it (nothing is changed yet), `cleanup`
 * removes what the user held elsewhere once the account is gone. Tenancy registers both (the
 * last owner of an org cannot delete the account; memberships go with it).
 */
export interface AccountLifecycle {
  check: ((userId: string) => Promise<void>)[];
  cleanup: ((userId: string) => Promise<void>)[];
  /**
   * Run once something (a password, a provider, a passkey) proved the user, before a session or a
   * second step: may refuse the sign-in (enterprise SSO: "this org requires SSO").
   */
  signInPolicy?: ((userId: string, method: string) => Promise<void>)[];
}

interface UserRow {
  id: string;
  email: string;
  email_verified_at: Date | string | null;
  password_hash: string | null;
  status: 'active' | 'disabled' | 'deleted';
  is_operator: boolean;
  created_at: Date | string;
}

export interface PublicUser {
  id: string;
  email: string;
  emailVerified: boolean;
  isOperator: boolean;
  createdAt: string;
}

/** A finished sign-in. */
export interface SignedIn {
  tokens: IssuedTokens;
  device: DeviceSighting;
  user: PublicUser;
}

/** A correct password of a user with a second factor: the sign-in continues at /v1/auth/mfa/verify. */
export interface SecondFactorRequired extends MfaChallenge {
  mfaRequired: true;
}

// Each repeated label starts after a mandatory dot and input is capped at 254 characters first.
// eslint-disable-next-line security/detect-unsafe-regex
const EMAIL_RE = /^[^\s@<>(),;:"[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Lowercased, NFKC-normalised email, or a VALIDATION_FAILED error. */
export function normalizeEmail(raw: string): string {
  const email = raw.normalize('NFKC').trim().toLowerCase();
  if (email.length > 254 || !EMAIL_RE.test(email)) throw new AppError('VALIDATION_FAILED', 'body.email: not a valid email address');
  return email;
}

function iso(v: Date | string | null): string | null {
  return v === null ? null : (v instanceof Date ? v : new Date(v)).toISOString();
}

function publicUser(u: UserRow): PublicUser {
  return { id: u.id, email: u.email, emailVerified: u.email_verified_at !== null, isOperator: u.is_operator, createdAt: iso(u.created_at) ?? '' };
}

/**
 * The sign-in lookup of a user: the row and, in the same statement, whether a second factor is
 * active (a confirmed TOTP factor or a passkey, as `mfa.hasActiveFactor` decides).
 */
const SIGN_IN_USER = `select u.id, u.email, u.email_verified_at, u.password_hash, u.status, u.is_operator, u.created_at,
         (exists (select 1 from mfa_factors f where f.user_id = u.id and f.confirmed_at is not null and f.deleted_at is null)
           or exists (select 1 from passkeys p where p.user_id = u.id)) as has_factor
    from users u`;

export function createAccounts(deps: AccountsDeps) {
  const note: IdentityAudit = deps.audit ?? (async () => undefined);
  const { db, kv, keyring, sessions, mfa, mailer, config, logger, now } = deps;
  const argon2: Argon2Params = { memoryKiB: config.auth.argon2MemoryKiB, timeCost: config.auth.argon2TimeCost, parallelism: config.auth.argon2Parallelism };
  const policy: PasswordPolicy = {
    ...DEFAULT_PASSWORD_POLICY,
    minLength: config.auth.passwordMinLength,
    maxLength: config.auth.passwordMaxLength,
    minStrengthScore: config.auth.passwordMinStrength as PasswordPolicy['minStrengthScore'],
    breachCheck: config.auth.breachCheck,
    breachRangeUrl: config.auth.breachRangeUrl,
  };
  const throttle = createLoginThrottle(kv, db, { freeAttempts: config.auth.throttleFreeAttempts, lockoutThreshold: config.auth.lockoutThreshold, lockoutSeconds: config.auth.lockoutSeconds }, now);
  const tokenTtlMs = config.auth.emailTokenTtlSeconds * 1000;

  /**
   * At most one mail of a kind per address per minute, so the public sign-up and reset endpoints
   * cannot be used to flood someone's inbox. The caller's answer does not change either way.
   */
  async function mayMail(kind: string, email: string): Promise<boolean> {
    return kv.setIfAbsent(`auth:mail:${kind}:${accountKey(email)}`, '1', 60_000);
  }

  async function acceptablePassword(password: string, userInputs: string[]): Promise<void> {
    const verdict = await checkNewPassword(password, policy, { userInputs });
    if (!verdict.ok) throw new AppError(verdict.problem, verdict.message);
  }

  async function userByEmail(email: string): Promise<UserRow | undefined> {
    return (await db.query<UserRow>("select id, email, email_verified_at, password_hash, status, is_operator, created_at from users where email = $1 and status <> 'deleted'", [email])).rows[0];
  }

  /** The sign-in lookup: the user and, in the same statement, whether a second factor is active (as `mfa.hasActiveFactor`). */
  async function signInUserByEmail(email: string): Promise<(UserRow & { has_factor: boolean }) | undefined> {
    return (
      await db.query<UserRow & { has_factor: boolean }>(
        `${SIGN_IN_USER} where u.email = $1 and u.status <> 'deleted'`,
        [email],
      )
    ).rows[0];
  }

  async function userById(id: string): Promise<UserRow | undefined> {
    return (await db.query<UserRow>("select id, email, email_verified_at, password_hash, status, is_operator, created_at from users where id = $1 and status <> 'deleted'", [id])).rows[0];
  }

  async function issueEmailToken(userId: string | null, purpose: 'verify-email' | 'password-reset' | 'setup', ttlMs: number): Promise<string> {
    const prefix = purpose === 'verify-email' ? 'ghv_' : purpose === 'password-reset' ? 'ghp_' : 'ghs_';
    const token = prefix + randomBytes(32).toString('base64url');
    // A new token of the same purpose voids the earlier ones.
    if (userId) await db.query('update email_tokens set used_at = $3 where user_id = $1 and purpose = $2 and used_at is null', [userId, purpose, new Date(now())]);
    await db.query('insert into email_tokens (id, user_id, purpose, token_hash, expires_at) values ($1, $2, $3, $4, $5)', [
      randomUUID(),
      userId,
      purpose,
      hashToken(token),
      new Date(now() + ttlMs),
    ]);
    return token;
  }

  /** Consumes a single-use token; returns its user id (null for setup) or throws TOKEN_INVALID. */
  async function consumeEmailToken(token: string, purpose: 'verify-email' | 'password-reset' | 'setup'): Promise<string | null> {
    const r = await db.query<{ user_id: string | null }>(
      'update email_tokens set used_at = $3 where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3 returning user_id',
      [hashToken(token), purpose, new Date(now())],
    );
    if (r.rowCount === 0) throw new AppError('TOKEN_INVALID');
    return r.rows[0]?.user_id ?? null;
  }

  /** Takes one hit of a per-IP sign-up window (or refuses with RATE_LIMITED); returns its give-back. */
  async function takeSignupSlot(window: 'created' | 'refused', ip: string, limit: number): Promise<() => Promise<void>> {
    const key = `auth:signup:${window}:${ip}`;
    const at = now();
    let hit;
    try {
      hit = await kv.hitSlidingWindow(key, limit, 3_600_000, at);
    } catch (err) {
      throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': '5' }, cause: err });
    }
    if (!hit.allowed) throw new AppError('RATE_LIMITED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil(hit.retryAfterMs / 1000))) } });
    return () => kv.releaseSlidingWindow(key, 3_600_000, at);
  }

  /**
   * Sign-up throttling per client IP (AUTH-5): an account slot (auth.signupsPerIpPerHour) and a
   * refused-attempt slot (auth.refusedSignupsPerIpPerHour) are both reserved atomically before any
   * work, so parallel sign-ups cannot exceed either. A sign-up refused for bad input gives its
   * account slot back; one that goes through gives its refused slot back. A taken email keeps the
   * account slot, exactly as a new account does (no enumeration).
   */
  async function signup(input: { email: string; password: string }, ip: string): Promise<void> {
    const releaseCreated = await takeSignupSlot('created', ip, config.auth.signupsPerIpPerHour);
    let releaseRefused: () => Promise<void>;
    try {
      releaseRefused = await takeSignupSlot('refused', ip, config.auth.refusedSignupsPerIpPerHour);
    } catch (err) {
      await releaseCreated();
      throw err;
    }
    let email: string;
    try {
      email = normalizeEmail(input.email);
      await acceptablePassword(input.password, [email, email.split('@')[0] ?? '']);
    } catch (err) {
      // No account is created, so its slot goes back; only a refusal for bad input keeps the refused slot.
      await releaseCreated();
      if (!(err instanceof AppError && err.status < 500)) await releaseRefused();
      throw err;
    }
    await releaseRefused();
    try {
      await createAccount(email, input.password);
    } catch (err) {
      await releaseCreated();
      throw err;
    }
  }

  /** A new account (or, for a taken email, the same work and a mail to its owner). */
  async function createAccount(email: string, password: string): Promise<void> {
    const existing = await userByEmail(email);
    if (existing) {
      // Same work and same answer as a new account; the owner learns someone tried.
      await hashPassword(password, argon2);
      if (!(await mayMail('account-exists', email))) return;
      await mailer.send({
        to: email,
        kind: 'account-exists',
        subject: 'Sign-up attempt with your email',
        text: `Someone tried to create a Gatehouse account with this address, which already has one.\nIf it was you, sign in or reset your password at ${deps.publicOrigin}.\nIf not, you can ignore this message.`,
      });
      return;
    }
    const id = randomUUID();
    const hash = await hashPassword(password, argon2);
    try {
      await db.query('insert into users (id, email, password_hash) values ($1, $2, $3)', [id, email, hash]);
    } catch (err) {
      // A concurrent sign-up with the same email won the unique index: answer the same way.
      if ((err as { code?: string }).code === '23505') return;
      throw err;
    }
    const token = await issueEmailToken(id, 'verify-email', tokenTtlMs);
    await mailer.send({
      to: email,
      kind: 'verify-email',
      subject: 'Verify your email',
      text: `Confirm your email address for Gatehouse with this code (valid ${Math.round(tokenTtlMs / 60000)} minutes):\n\n${token}\n\nPOST ${deps.publicOrigin}/v1/auth/verify-email {"token": "<code>"}`,
    });
  }

  async function verifyEmail(token: string): Promise<void> {
    const userId = await consumeEmailToken(token, 'verify-email');
    await db.query('update users set email_verified_at = $2, updated_at = $2 where id = $1 and email_verified_at is null', [userId, new Date(now())]);
    await note('auth.email.verified', userId);
  }

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

  /** The id of the live account with this (normalised) email, if any. */
  async function findUserIdByEmail(rawEmail: string): Promise<string | null> {
    return (await userByEmail(normalizeEmail(rawEmail)))?.id ?? null;
  }

  /**
   * A new account whose email a provider verified; it has no password (sign-in goes through the
   * provider, or a password is set by reset). Null when the email was taken meanwhile.
   */
  async function createVerifiedUser(rawEmail: string): Promise<string | null> {
    const email = normalizeEmail(rawEmail);
    const id = randomUUID();
    try {
      await db.query('insert into users (id, email, email_verified_at) values ($1, $2, $3)', [id, email, new Date(now())]);
    } catch (err) {
      if ((err as { code?: string }).code === '23505') return null;
      throw err;
    }
    return id;
  }

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
      text: `A password reset was requested for your Gatehouse account. Use this code within ${Math.round(tokenTtlMs / 60000)} minutes:\n\n${token}\n\nPOST ${deps.publicOrigin}/v1/auth/password-reset/confirm {"token": "<code>", "password": "<new password>"}\nIf you did not ask for this, ignore this message.`,
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

  async function me(userId: string): Promise<PublicUser> {
    const user = await userById(userId);
    if (!user) throw new AppError('UNAUTHENTICATED');
    return publicUser(user);
  }

  /** The signed-in user with their second-factor state. */
  async function meWithMfa(userId: string): Promise<PublicUser & { mfa: MfaStatus }> {
    const [user, status] = await Promise.all([me(userId), mfa.status(userId)]);
    return { ...user, mfa: status };
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

  async function exportData(userId: string, sessionId: string) {
    const user = await me(userId);
    return {
      exportedAt: new Date(now()).toISOString(),
      user,
      sessions: await sessions.list(userId, sessionId),
      devices: await listDevices(db, userId),
      mfa: await mfa.status(userId),
      socialIdentities: (
        await db.query<{ provider: string; email: string; created_at: Date | string }>('select provider, email, created_at from social_identities where user_id = $1 order by created_at', [userId])
      ).rows.map((r) => ({ provider: r.provider, email: r.email, linkedAt: iso(r.created_at) ?? '' })),
      passkeys: (
        await db.query<{ id: string; name: string; created_at: Date | string; last_used_at: Date | string | null }>(
          'select id, name, created_at, last_used_at from passkeys where user_id = $1 order by created_at, id',
          [userId],
        )
      ).rows.map((r) => ({ id: r.id, name: r.name, createdAt: iso(r.created_at) ?? '', lastUsedAt: iso(r.last_used_at) })),
    };
  }

  /**
   * Removes the link to a sign-in provider. A second factor within the last 5 minutes is needed
   * when the user has one (it changes how the account signs in), and the last way to sign in (no
   * password, one link) cannot be removed.
   */
  async function unlinkSocial(userId: string, sessionId: string, provider: string): Promise<void> {
    await mfa.requireFreshSecondFactor(userId, sessionId);
    await db.transaction(async (tx) => {
      // The user row is the lock: two unlinks at once cannot both pass the last-method check.
      const user = await tx.query<{ has_password: boolean }>('select password_hash is not null as has_password from users where id = $1 for update', [userId]);
      const links = await tx.query<{ provider: string }>('select provider from social_identities where user_id = $1', [userId]);
      if (!links.rows.some((l) => l.provider === provider)) throw new AppError('NOT_FOUND', 'No such linked provider.');
      if (user.rows[0]?.has_password !== true && links.rowCount <= 1) throw new AppError('SOCIAL_LAST_SIGN_IN_METHOD');
      await tx.query('delete from social_identities where user_id = $1 and provider = $2', [userId, provider]);
    });
    await note('auth.social.unlinked', userId, { provider });
  }

  async function deleteAccount(userId: string, sessionId: string, password: string): Promise<void> {
    // Asked first, so a client learns to step up before spending a password attempt.
    await mfa.requireFreshSecondFactor(userId, sessionId);
    const user = await userById(userId);
    if (!user?.password_hash || !(await verifyPassword(user.password_hash, password))) throw new AppError('INVALID_CREDENTIALS');
    for (const check of deps.lifecycle?.check ?? []) await check(userId);
    await sessions.revokeAllForUser(userId, 'account-deleted');
    const t = new Date(now());
    await db.transaction(async (tx) => {
      await tx.query(
        "update users set status = 'deleted', email = $2, password_hash = null, email_verified_at = null, deleted_at = $3, updated_at = $3 where id = $1",
        [userId, `deleted-${userId}@invalid`, t],
      );
      await tx.query('update devices set revoked_at = $2, user_agent = null, networks = $3 where user_id = $1', [userId, t, []]);
      await tx.query('update sessions set ip = null, user_agent = null where user_id = $1', [userId]);
      await tx.query('update email_tokens set used_at = coalesce(used_at, $2) where user_id = $1', [userId, t]);
      await mfa.forgetUser(tx, userId, t);
      // A provider account no longer signs in to (or re-creates) the deleted one.
      await tx.query('delete from social_identities where user_id = $1', [userId]);
      await tx.query('update social_link_tokens set used_at = coalesce(used_at, $2) where user_id = $1', [userId, t]);
    });
    // Crypto-shredding: whatever was sealed under the user's personal-data key is unreadable from now on.
    await keyring.destroyKeys({ tenantId: PLATFORM_TENANT_ID, subjectId: userId });
    for (const cleanup of deps.lifecycle?.cleanup ?? []) await cleanup(userId);
    await note('account.deleted', userId);
    logger.info({ event: 'account_deleted', userId, sessionId }, 'account deleted');
  }

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

  /** First run: when no operator exists, a one-time setup token (printed by `start`). */
  async function ensureSetupToken(): Promise<string | null> {
    const ops = await db.query("select 1 from users where is_operator and status <> 'deleted' limit 1");
    if (ops.rowCount > 0) return null;
    await db.query("update email_tokens set used_at = $1 where purpose = 'setup' and used_at is null", [new Date(now())]);
    return issueEmailToken(null, 'setup', tokenTtlMs);
  }

  async function completeSetup(token: string, input: { email: string; password: string }): Promise<PublicUser> {
    const email = normalizeEmail(input.email);
    // The same rules as sign-up (length, blocklist with the printed placeholders, strength, breach check).
    await acceptablePassword(input.password, [email, email.split('@')[0] ?? '']);
    const ops = await db.query("select 1 from users where is_operator and status <> 'deleted' limit 1");
    if (ops.rowCount > 0) throw new AppError('TOKEN_INVALID');
    await consumeEmailToken(token, 'setup');
    const id = randomUUID();
    const t = new Date(now());
    await db.query('insert into users (id, email, password_hash, email_verified_at, is_operator) values ($1, $2, $3, $4, true)', [
      id,
      email,
      await hashPassword(input.password, argon2),
      t,
    ]);
    logger.info({ event: 'operator_created', userId: id }, 'first operator account created');
    await note('operator.setup.completed', id);
    const user = await userById(id);
    if (!user) throw new AppError('INTERNAL');
    return publicUser(user);
  }

  return {
    signup,
    verifyEmail,
    login,
    completeSecondFactor,
    signInVerifiedUser,
    findUserIdByEmail,
    createVerifiedUser,
    requestPasswordReset,
    confirmPasswordReset,
    changePassword,
    me,
    meWithMfa,
    reauthenticate,
    exportData,
    deleteAccount,
    unlinkSocial,
    setOperatorDisabled,
    resetSecondFactors,
    ensureSetupToken,
    completeSetup,
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
