/**
 * Sign-up with email verification (AUTH-1, AUTH-2), throttled per client IP (AUTH-5), and accounts a
 * provider vouched for. The answer never reveals whether an email has an account.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { hashPassword } from './passwords.ts';
import { normalizeEmail, type AccountsCore } from './accounts-core.ts';

export function createSignup(core: AccountsCore) {
  const { deps, note, argon2, tokenTtlMs, mayMail, acceptablePassword, userByEmail, issueEmailToken, consumeEmailToken } = core;
  const { db, kv, mailer, config, now } = deps;

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
      text:
        `Confirm your email address for Gatehouse by opening this link (valid ${Math.round(tokenTtlMs / 60000)} minutes):\n\n` +
        `${deps.publicOrigin}/console/sign-up?token=${encodeURIComponent(token)}\n\n` +
        `Or use this code:\n\n${token}\n\nPOST ${deps.publicOrigin}/v1/auth/verify-email {"token": "<code>"}`,
    });
  }

  async function verifyEmail(token: string): Promise<void> {
    const userId = await consumeEmailToken(token, 'verify-email');
    await db.query('update users set email_verified_at = $2, updated_at = $2 where id = $1 and email_verified_at is null', [userId, new Date(now())]);
    await note('auth.email.verified', userId);
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

  return { signup, verifyEmail, findUserIdByEmail, createVerifiedUser };
}
