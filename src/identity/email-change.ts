/**
 * Changing the account's email address (AUTH-2, AUTH-7): a sensitive action. The request needs the
 * password re-entered (or, for an account without one, a sign-in within the last 5 minutes) and,
 * when the user has a second factor, one verified in this session within the last 5 minutes.
 * The new address must prove itself: a single-use code, stored hashed, is mailed to it, and only
 * its confirmation changes the address. The old address is told at both steps.
 *
 * No enumeration: a request for an address another account uses answers the same 202; the mail
 * to that address says it is taken instead of carrying a code.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { IdentityAudit } from './identity-audit.ts';
import { normalizeEmail } from './accounts.ts';
import type { MailQueue } from './mail-queue.ts';
import type { Mfa } from './mfa.ts';
import { verifyPassword } from './passwords.ts';
import { hashToken, type Sessions } from './sessions.ts';

/** How recent a sign-in must be to stand in for the password of an account without one. */
export const RECENT_SIGN_IN_MS = 5 * 60_000;
export const EMAIL_CHANGE_TOKEN_PREFIX = 'ghe_';

export interface EmailChangeDeps {
  db: Db;
  kv: Kv;
  mfa: Mfa;
  sessions: Sessions;
  mailer: MailQueue;
  logger: Logger;
  now: () => number;
  publicOrigin: string;
  tokenTtlMs: number;
  audit?: IdentityAudit;
}

async function currentUser(db: EmailChangeDeps['db'], userId: string): Promise<{ email: string; password_hash: string | null }> {
  const row = (await db.query<{ email: string; password_hash: string | null }>("select email, password_hash from users where id = $1 and status = 'active'", [userId])).rows[0];
  if (!row) throw new AppError('UNAUTHENTICATED');
  return row;
}

/** The password again; an account without one needs a sign-in (or re-authentication) within the last 5 minutes. */
async function confirmIdentity(deps: EmailChangeDeps, userId: string, sessionId: string, passwordHash: string | null, password: string | undefined): Promise<void> {
  if (passwordHash) {
    if (password === undefined || !(await verifyPassword(passwordHash, password))) throw new AppError('INVALID_CREDENTIALS');
    await deps.sessions.markReauthenticated(sessionId);
    return;
  }
  const at = await deps.sessions.reauthenticatedAt(userId, sessionId);
  if (at === null || deps.now() - at > RECENT_SIGN_IN_MS) throw new AppError('REAUTHENTICATION_REQUIRED');
}

export function createEmailChange(deps: EmailChangeDeps) {
  const { db, kv, mfa, mailer, logger, now, publicOrigin, tokenTtlMs } = deps;
  const note: IdentityAudit = deps.audit ?? (async () => undefined);

  /**
   * Starts a change to `rawEmail`. Answers nothing either way (the route says 202): the new address
   * receives the code, or a note that it already has an account.
   */
  async function request(userId: string, sessionId: string, input: { email: string; password?: string | undefined }): Promise<void> {
    const newEmail = normalizeEmail(input.email);
    // Step-up first, so a client learns to confirm its second factor before spending a password attempt.
    await mfa.requireFreshSecondFactor(userId, sessionId);
    const user = await currentUser(db, userId);
    await confirmIdentity(deps, userId, sessionId, user.password_hash, input.password);
    if (newEmail === user.email) throw new AppError('EMAIL_UNCHANGED');
    // At most one code per account per minute: the endpoint cannot flood an inbox.
    const window = await kv.hitSlidingWindow(`auth:email-change:${userId}`, 1, 60_000, now());
    if (!window.allowed) {
      throw new AppError('RATE_LIMITED', 'An email change was requested less than a minute ago.', {
        headers: { 'retry-after': String(Math.max(1, Math.ceil(window.retryAfterMs / 1000))) },
      });
    }
    const taken = (await db.query("select 1 from users where email = $1 and status <> 'deleted'", [newEmail])).rowCount > 0;
    const t = new Date(now());
    if (taken) {
      await mailer.send({
        to: newEmail,
        kind: 'account-exists',
        subject: 'Email change to an address with an account',
        text: `Someone asked to move a Gatehouse account to this address, which already has an account of its own. Nothing was changed.\nIf this was you, sign in to the account that uses this address at ${publicOrigin}.`,
      });
      await note('auth.email.change_requested', userId, { taken: true });
      return;
    }
    const token = EMAIL_CHANGE_TOKEN_PREFIX + randomBytes(32).toString('base64url');
    // Sealed before, queued with the code in one transaction: the code exists only with its mail.
    const toNew = await mailer.prepare({
      to: newEmail,
      kind: 'email-change',
      subject: 'Confirm your new email address',
      text:
        `Confirm this address for your Gatehouse account by opening this link (valid ${Math.round(tokenTtlMs / 60000)} minutes):\n\n` +
        `${publicOrigin}/console/confirm-email?token=${encodeURIComponent(token)}\n\n` +
        `Or use this code:\n\n${token}\n\nPOST ${publicOrigin}/v1/auth/email-change/confirm {"token": "<code>"}\nIf you did not ask for this, ignore this message.`,
    });
    const toOld = await mailer.prepare({
      to: user.email,
      kind: 'notice',
      subject: 'An email change was requested',
      text: `A change of your Gatehouse account's email address was requested. It takes effect only when the new address confirms it.\nIf this was not you, sign out all sessions and change your password at ${publicOrigin}.`,
    });
    await db.transaction(async (tx) => {
      // A new request voids the earlier ones.
      await tx.query("update email_tokens set used_at = $2 where user_id = $1 and purpose = 'email-change' and used_at is null", [userId, t]);
      await tx.query("insert into email_tokens (id, user_id, purpose, token_hash, expires_at, new_email) values ($1, $2, 'email-change', $3, $4, $5)", [
        randomUUID(),
        userId,
        hashToken(token),
        new Date(now() + tokenTtlMs),
        newEmail,
      ]);
      await mailer.enqueue(tx, toNew);
      await mailer.enqueue(tx, toOld);
    });
    mailer.wake();
    await note('auth.email.change_requested', userId, { taken: false });
  }

  /** Confirms a change with the code mailed to the new address; the address becomes the account's, verified. */
  async function confirm(token: string): Promise<void> {
    if (!token.startsWith(EMAIL_CHANGE_TOKEN_PREFIX)) throw new AppError('TOKEN_INVALID');
    const t = new Date(now());
    const changed = await db.transaction(async (tx) => {
      const used = await tx.query<{ user_id: string; new_email: string }>(
        "update email_tokens set used_at = $2 where token_hash = $1 and purpose = 'email-change' and used_at is null and expires_at > $2 returning user_id, new_email",
        [hashToken(token), t],
      );
      const row = used.rows[0];
      if (!row) throw new AppError('TOKEN_INVALID');
      const before = (await tx.query<{ email: string }>("select email from users where id = $1 and status = 'active' for update", [row.user_id])).rows[0];
      if (!before) throw new AppError('TOKEN_INVALID');
      try {
        await tx.query('savepoint email_change');
        await tx.query('update users set email = $2, email_verified_at = $3, updated_at = $3 where id = $1', [row.user_id, row.new_email, t]);
        await tx.query('release savepoint email_change');
      } catch (err) {
        // Another account took the address after the request: nothing changes, the code stays spent.
        if ((err as { code?: string }).code === '23505') {
          await tx.query('rollback to savepoint email_change');
          return { userId: row.user_id, taken: true as const, oldEmail: before.email, newEmail: row.new_email };
        }
        throw err;
      }
      // Codes mailed to the old address (password reset, verification) stop working.
      await tx.query("update email_tokens set used_at = $2 where user_id = $1 and purpose in ('password-reset', 'verify-email') and used_at is null", [row.user_id, t]);
      return { userId: row.user_id, taken: false as const, oldEmail: before.email, newEmail: row.new_email };
    });
    if (changed.taken) throw new AppError('EMAIL_TAKEN');
    await mailer.send({
      to: changed.oldEmail,
      kind: 'notice',
      subject: 'Your email address was changed',
      text: `Your Gatehouse account now uses a different email address; this address no longer signs in to it.\nIf this was not you, contact your administrator at once.`,
    });
    await note('auth.email.changed', changed.userId);
    logger.info({ event: 'email_changed', userId: changed.userId }, 'account email address changed');
  }

  return { request, confirm };
}

export type EmailChange = ReturnType<typeof createEmailChange>;
