/**
 * The "SSO required" setting of an org (AUTH-9) and the sign-in policy it drives: a member of an
 * org that requires SSO, other than its owners (the break-glass: an owner can always sign in with
 * their password and second factor, to repair a broken IdP setup), signs in only through SSO.
 */
import { AppError } from '../server/errors.ts';
import { startPathOf, type SsoDeps } from './sso-shared.ts';

/** Whether a sign-in method is exempt from "SSO required": only SSO itself is. */
export const isSsoMethod = (method: string): boolean => method.startsWith('sso:');

/** The refusal of a non-SSO sign-in: points at the org's first enabled connection, or at discovery when it has none. */
export function ssoRequiredError(publicOrigin: string, connectionId: string | null): AppError {
  const path = connectionId ? startPathOf(connectionId) : '/v1/auth/sso/discover';
  return new AppError('SSO_REQUIRED', `Your organization requires single sign-on: sign in at ${path}.`, { headers: { link: `<${publicOrigin}${path}>; rel="sso"` } });
}

export function createSsoPolicy(deps: SsoDeps) {
  const { db, audit, publicOrigin } = deps;

  async function getSettings(orgId: string): Promise<{ ssoRequired: boolean }> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<{ sso_required: boolean }>('select sso_required from orgs'));
    if (!rows[0]) throw new AppError('NOT_FOUND');
    return { ssoRequired: rows[0].sso_required };
  }

  /** Turning "SSO required" on needs an enabled connection with a verified domain (SSO_NOT_READY otherwise). */
  async function setSettings(orgId: string, ssoRequired: boolean): Promise<{ ssoRequired: boolean }> {
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.settings.changed', target: { type: 'org', id: orgId }, data: { ssoRequired } });
    await db.withTenant(orgId, async (tx) => {
      if (ssoRequired) {
        const ready = await tx.query('select 1 from sso_connections c where c.enabled and exists (select 1 from sso_domains d where d.connection_id = c.id and d.verified_at is not null) limit 1');
        if (ready.rowCount === 0) throw new AppError('SSO_NOT_READY');
      }
      await tx.query('update orgs set sso_required = $1, updated_at = now()', [ssoRequired]);
      await audit.append(tx, event);
    });
    return { ssoRequired };
  }

  /** The sign-in policy registered with accounts (see the top of this file). */
  async function enforceSsoRequired(userId: string, method: string): Promise<void> {
    if (isSsoMethod(method)) return;
    const { rows } = await db.withUser(userId, (tx) =>
      tx.query<{ tenant_id: string; role: string }>(
        `select m.tenant_id, m.role from memberships m join orgs o on o.tenant_id = m.tenant_id
          where m.user_id = $1 and o.sso_required and m.role <> 'owner' order by o.created_at, o.tenant_id limit 1`,
        [userId],
      ),
    );
    const org = rows[0];
    if (!org) return;
    const conn = (await db.withTenant(org.tenant_id, (tx) => tx.query<{ id: string }>('select id from sso_connections where enabled order by created_at, id limit 1'))).rows[0];
    await audit.record({ tenantId: org.tenant_id, action: 'sso.failed', target: { type: 'user', id: userId }, data: { reason: 'sso-required', method } });
    throw ssoRequiredError(publicOrigin, conn?.id ?? null);
  }

  /** Removes a deleted account's links in every org. */
  async function forgetUser(userId: string): Promise<void> {
    const { rows } = await db.withUser(userId, (tx) => tx.query<{ tenant_id: string }>('select distinct tenant_id from sso_identities where user_id = $1', [userId]));
    for (const { tenant_id: orgId } of rows) await db.withTenant(orgId, (tx) => tx.query('delete from sso_identities where user_id = $1', [userId]));
  }

  return { getSettings, setSettings, enforceSsoRequired, forgetUser };
}
