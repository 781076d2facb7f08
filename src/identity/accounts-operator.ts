/**
 * What operators do to an account (AUTH-10): disable it (its sessions end at once), reset the second
 * factors of a user who lost them.
 */
import { AppError } from '../server/errors.ts';
import { iso, type AccountsCore } from './accounts-core.ts';

/** One user as the operators' list shows them: no hash, no secret. */
export interface ListedUser {
  id: string;
  email: string;
  createdAt: string;
  disabled: boolean;
  hasSecondFactor: boolean;
}

/**
 * The operators' user list is keyset-paged on (created_at, id): a cursor is the last row's
 * creation time in microseconds since the epoch and its id, so a user created while an operator
 * pages is never shown twice nor shifts a page (new users sort last).
 */
export const USER_CURSOR_RE = /^([0-9]{1,17})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
export interface UserListQuery {
  /** A part of the email address (matched as a substring, after the same normalisation as sign-up). */
  q?: string | undefined;
  cursor?: string | undefined;
  limit: number;
}

/** One page of the list; its where and order match the index users_created_id_live_idx (migration 20261207T2310). */
export const LIST_USERS = `select u.id, u.email, u.status, u.created_at,
       (extract(epoch from u.created_at) * 1000000)::bigint::text as created_us,
       (exists (select 1 from mfa_factors f where f.user_id = u.id and f.confirmed_at is not null and f.deleted_at is null)
         or exists (select 1 from passkeys p where p.user_id = u.id)) as has_factor
  from users u
 where u.status <> 'deleted'
   and ($1::text is null or strpos(u.email, $1::text) > 0)
   and ($2::bigint is null or (u.created_at, u.id) > (timestamptz 'epoch' + $2::bigint * interval '1 microsecond', $3::uuid))
 order by u.created_at, u.id
 limit $4`;

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

  /** Operators: the users, oldest first, optionally those whose email contains `q`; `nextCursor` is null on the last page. */
  async function listUsers(operatorId: string, query: UserListQuery): Promise<{ users: ListedUser[]; nextCursor: string | null }> {
    const op = await userById(operatorId);
    if (!op?.is_operator || op.status !== 'active') throw new AppError('FORBIDDEN');
    const after = query.cursor === undefined ? null : USER_CURSOR_RE.exec(query.cursor);
    if (query.cursor !== undefined && !after) throw new AppError('VALIDATION_FAILED', 'querystring.cursor: not a cursor this list gave');
    const q = query.q === undefined ? null : query.q.normalize('NFKC').trim().toLowerCase();
    const { rows } = await db.query<{ id: string; email: string; status: string; created_at: Date | string; created_us: string; has_factor: boolean }>(LIST_USERS, [
      q === '' ? null : q,
      after?.[1] ?? null,
      after?.[2] ?? null,
      query.limit + 1,
    ]);
    const page = rows.slice(0, query.limit);
    const last = page[page.length - 1];
    return {
      users: page.map((r) => ({ id: r.id, email: r.email, createdAt: iso(r.created_at) ?? '', disabled: r.status === 'disabled', hasSecondFactor: r.has_factor === true })),
      nextCursor: rows.length > query.limit && last ? `${last.created_us}_${last.id}` : null,
    };
  }

  return { setOperatorDisabled, resetSecondFactors, listUsers };
}
