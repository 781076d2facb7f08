/**
 * The end of every SSO sign-in (AUTH-9): the asserted email must be in one of the org's verified
 * domains; a user linked by (connection, subject) signs in; an existing account with that email is
 * linked; a new one is created (the IdP vouched for the email in a domain the org proved it holds)
 * and joins the org with the connection's default role. Every refusal happens before anything is
 * written. The decisions are pure functions; `createSsoProvisioning` runs them against the database.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import type { Queryable } from '../store/db-types.ts';
import { isRole } from '../tenancy/index.ts';
import { normalizeEmail, type SecondFactorRequired, type SessionContext, type SignedIn } from '../identity/index.ts';
import { domainOfEmail } from './sso-domains.ts';
import type { ConnectionRow, DefaultRole, SsoDeps } from './sso-shared.ts';

/** Why a sign-in is refused: the reason recorded in the audit log and the error code the client gets. */
export interface Refusal {
  reason: string;
  code: string;
}

/** The user a (connection, subject) is linked to may sign in only with the same email, and not while disabled. */
export function checkLinkedUser(user: { email: string; status: string } | undefined, email: string): Refusal | null {
  // The IdP now names another address for the same subject: not silently followed.
  if (!user || user.email !== email) return { reason: 'subject-email-mismatch', code: 'SSO_SUBJECT_MISMATCH' };
  if (user.status === 'disabled') return { reason: 'disabled', code: 'ACCOUNT_DISABLED' };
  return null;
}

/**
 * An existing account with the asserted email may be linked unless it is an operator's, an operator
 * disabled it, or it is already linked to another subject of the same connection.
 */
export function checkExistingAccount(found: { is_operator: boolean; status: string } | undefined, linkedToOtherSubject: boolean): Refusal | null {
  if (found?.is_operator) return { reason: 'operator', code: 'SSO_ACCOUNT_NOT_ELIGIBLE' };
  // An operator disabled the account: no link, no membership, no session.
  if (found?.status === 'disabled') return { reason: 'disabled', code: 'ACCOUNT_DISABLED' };
  if (found && linkedToOtherSubject) return { reason: 'user-linked-elsewhere', code: 'SSO_SUBJECT_MISMATCH' };
  return null;
}

/** The role a provisioned member gets: the connection's default role, never owner, viewer for anything unknown. */
export function provisionedRole(defaultRole: string): DefaultRole {
  return isRole(defaultRole) && defaultRole !== 'owner' ? (defaultRole as DefaultRole) : 'viewer';
}

/** The normalized asserted email, or null when the IdP sent none (or nothing that is an email). */
export function assertedEmail(raw: string | null): string | null {
  try {
    return normalizeEmail(raw ?? '');
  } catch {
    return null;
  }
}

type Refuse = (row: ConnectionRow, reason: string, code: string, detail?: string) => Promise<never>;

export function createSsoProvisioning(deps: SsoDeps, refuse: Refuse) {
  const { db, audit, accounts, now } = deps;
  const refuseWith = (row: ConnectionRow, refusal: Refusal): Promise<never> => refuse(row, refusal.reason, refusal.code);

  /** The account that signs in: the linked one, an existing one with the email, or a new one. */
  async function resolveUser(row: ConnectionRow, linkedUser: string | null, email: string): Promise<{ userId: string; created: boolean }> {
    if (linkedUser) {
      const user = (await db.query<{ email: string; status: string }>("select email, status from users where id = $1 and status <> 'deleted'", [linkedUser])).rows[0];
      const refusal = checkLinkedUser(user, email);
      if (refusal) return refuseWith(row, refusal);
      return { userId: linkedUser, created: false };
    }
    const existing = await db.query<{ id: string; is_operator: boolean; status: string }>("select id, is_operator, status from users where email = $1 and status <> 'deleted'", [email]);
    const found = existing.rows[0];
    const early = checkExistingAccount(found, false);
    if (early) return refuseWith(row, early);
    if (found) {
      const other = await db.withTenant(row.tenant_id, (tx) => tx.query('select 1 from sso_identities where connection_id = $1 and user_id = $2', [row.id, found.id]));
      const refusal = checkExistingAccount(found, other.rowCount > 0);
      if (refusal) return refuseWith(row, refusal);
      return { userId: found.id, created: false };
    }
    const id = await accounts.createVerifiedUser(email);
    const again = id ?? (await accounts.findUserIdByEmail(email));
    if (!again) throw new AppError('INTERNAL');
    return { userId: again, created: id !== null };
  }

  /** Links (connection, subject) to the user; a race lost to another link keeps nothing. */
  async function link(tx: Queryable, row: ConnectionRow, subject: string, userId: string, email: string): Promise<void> {
    const linked = await tx
      .query(
        `insert into sso_identities (id, tenant_id, connection_id, subject, user_id, email, last_login_at) values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (tenant_id, connection_id, subject) do update set last_login_at = excluded.last_login_at
         where sso_identities.user_id = excluded.user_id`,
        [randomUUID(), row.tenant_id, row.id, subject, userId, email, new Date(now())],
      )
      .catch((err: unknown) => {
        // The user got linked to another subject of this connection meanwhile.
        if ((err as { code?: string }).code === '23505') throw new AppError('SSO_SUBJECT_MISMATCH');
        throw err;
      });
    // Lost a race to another link of this subject (or of this user): nothing is kept.
    if (linked.rowCount === 0) throw new AppError('SSO_SUBJECT_MISMATCH');
  }

  /** Links the subject and makes the user a member if they are not one (and no admin removed them). True when they joined. */
  async function join(row: ConnectionRow, subject: string, userId: string, email: string, created: boolean): Promise<boolean> {
    const orgId = row.tenant_id;
    const role = provisionedRole(row.default_role);
    const provisioned = await audit.prepare({ tenantId: orgId, action: 'sso.user.provisioned', target: { type: 'user', id: userId }, data: { connection: row.id, role, createdAccount: created } });
    const signedIn = await audit.prepare({ tenantId: orgId, action: 'sso.login', target: { type: 'user', id: userId }, actor: { type: 'user', id: userId }, data: { connection: row.id } });
    return db.withTenant(orgId, async (tx) => {
      // Someone who is not a member is provisioned only if no admin removed them from the org:
      // a removed person still signs in to their own account (the IdP proved who they are, and
      // they need a session to accept a new invitation) but does not become a member again.
      // The org row lock is the one member changes take, so a removal and this sign-in do not
      // interleave; a member's sign-in takes no lock.
      let removed = false;
      if ((await tx.query('select 1 from memberships where user_id = $1', [userId])).rowCount === 0) {
        await tx.query('select tenant_id from orgs for update');
        removed = (await tx.query('select 1 from member_removals where user_id = $1', [userId])).rowCount > 0;
      }
      await link(tx, row, subject, userId, email);
      if (removed) {
        await audit.append(tx, signedIn, { provisioned: false, reason: 'member-removed' });
        return false;
      }
      const member = await tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, $3) on conflict (tenant_id, user_id) do nothing", [orgId, userId, role]);
      if (member.rowCount > 0) await audit.append(tx, provisioned);
      await audit.append(tx, signedIn);
      return member.rowCount > 0;
    });
  }

  /**
   * The common end of a sign-in: checks the email against the org's verified domains, finds or
   * links or creates the user, makes them a member (default role) if they are not one, signs in.
   */
  async function finish(row: ConnectionRow, subject: string, rawEmail: string | null, ctx: SessionContext & { deviceCookie?: string }): Promise<SignedIn | SecondFactorRequired> {
    const email = assertedEmail(rawEmail);
    if (email === null) return refuse(row, 'email-missing', 'SSO_EMAIL_NOT_ALLOWED');
    const domain = domainOfEmail(email);
    const known = await db.withTenant(row.tenant_id, async (tx) => {
      const allowed = await tx.query('select 1 from sso_domains where domain = $1 and verified_at is not null', [domain]);
      const linked = await tx.query<{ user_id: string }>('select user_id from sso_identities where connection_id = $1 and subject = $2', [row.id, subject]);
      return { allowed: allowed.rowCount > 0, linkedUser: linked.rows[0]?.user_id ?? null };
    });
    if (!known.allowed) return refuse(row, 'email-domain', 'SSO_EMAIL_NOT_ALLOWED');
    const { userId, created } = await resolveUser(row, known.linkedUser, email);
    if (await join(row, subject, userId, email, created)) await deps.evictOrg(row.tenant_id);
    return deps.accounts.signInVerifiedUser(userId, ctx, `sso:${row.id}`);
  }

  return { finish };
}
