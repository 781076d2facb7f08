/**
 * The account's life (AUTH-10): who it is, export of its data, unlinking a provider, deletion with
 * crypto-shredding.
 */
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import { listDevices } from './devices.ts';
import type { MfaStatus } from './mfa.ts';
import { verifyPassword } from './passwords.ts';
import { iso, publicUser, type PublicUser, type AccountsCore } from './accounts-core.ts';

export function createLifecycle(core: AccountsCore) {
  const { deps, note, userById } = core;
  const { db, keyring, sessions, mfa, logger, now } = deps;

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

  return { me, meWithMfa, exportData, unlinkSocial, deleteAccount };
}
