/**
 * Social links (AUTH-8, see social.ts): a provider subject linked to an account, and the owner's
 * confirmation of a pending link, by password or by their session.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Accounts, IdentityAudit, SecondFactorRequired, SignedIn } from './accounts.ts';
import { hashToken, type SessionContext } from './sessions.ts';
import type { SocialMode as Mode } from './social-state.ts';

export function createSocialLinks(deps: { db: Db; accounts: Accounts; now: () => number; note: IdentityAudit }) {
  const { db, accounts, now, note } = deps;

  async function insertLink(userId: string, provider: string, subject: string, email: string): Promise<void> {
    await db.query('insert into social_identities (id, user_id, provider, subject, email) values ($1, $2, $3, $4, $5) on conflict (provider, subject) do nothing', [
      randomUUID(),
      userId,
      provider,
      subject,
      email,
    ]);
  }

  /**
   * The owner of an existing account confirms a pending link with their password (a password
   * sign-in, throttled like one): the link is made and they are signed in, or asked for their
   * second factor. A wrong password leaves the pending link as it was, until it expires.
   */
  async function confirmLink(linkToken: string, password: string, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }): Promise<(SignedIn | SecondFactorRequired) & { mode: Mode }> {
    const pending = (
      await db.query<{ id: string; user_id: string; provider: string; subject: string; email: string; mode: Mode; user_email: string }>(
        `select t.id, t.user_id, t.provider, t.subject, t.email, t.mode, u.email as user_email
           from social_link_tokens t join users u on u.id = t.user_id
          where t.token_hash = $1 and t.used_at is null and t.expires_at > $2 and u.status <> 'deleted'`,
        [hashToken(linkToken), new Date(now())],
      )
    ).rows[0];
    if (!pending) throw new AppError('SOCIAL_LINK_INVALID');
    const result = await accounts.login({ email: pending.user_email, password }, { ...ctx, mode: pending.mode });
    const spent = await db.query('update social_link_tokens set used_at = $2 where id = $1 and used_at is null', [pending.id, new Date(now())]);
    if (spent.rowCount === 0) throw new AppError('SOCIAL_LINK_INVALID');
    await insertLink(pending.user_id, pending.provider, pending.subject, pending.email);
    await note('auth.social.linked', pending.user_id, { provider: pending.provider, created: false });
    return { ...result, mode: pending.mode };
  }

  /** The owner, signed in, confirms a pending link to their own account: their session proves them. */
  async function confirmLinkSignedIn(linkToken: string, userId: string): Promise<void> {
    const spent = await db.query<{ provider: string; subject: string; email: string }>(
      'update social_link_tokens set used_at = $3 where token_hash = $1 and user_id = $2 and used_at is null and expires_at > $3 returning provider, subject, email',
      [hashToken(linkToken), userId, new Date(now())],
    );
    const row = spent.rows[0];
    // Another account's pending link is as unknown as a made-up token.
    if (!row) throw new AppError('SOCIAL_LINK_INVALID');
    await insertLink(userId, row.provider, row.subject, row.email);
    await note('auth.social.linked', userId, { provider: row.provider, created: false });
  }

  return { insertLink, confirmLink, confirmLinkSignedIn };
}
