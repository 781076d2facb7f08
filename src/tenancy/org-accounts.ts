/**
 * What deleting an account asks of tenancy (identity's ACCOUNT_DELETE_CHECKS and ACCOUNT_CLEANUP
 * hooks): refuse while the account is an org's last owner; afterwards, remove its memberships.
 */
import { AppError } from '../server/errors.ts';
import { lockOrg, ownerCount, type TenancyDeps } from './org-core.ts';

export function orgAccountHooks(deps: TenancyDeps) {
  const { db, evictOrg, audit } = deps;
  return {
    /** Refuses (LAST_OWNER, naming the org) when the user is the only owner of any org. */
    async assertNotLastOwner(userId: string): Promise<void> {
      const { rows } = await db.withUser(userId, (tx) =>
        tx.query<{ tenant_id: string; name: string }>(
          `select o.tenant_id, o.name from memberships m join orgs o on o.tenant_id = m.tenant_id
            where m.user_id = $1 and m.role = 'owner'`,
          [userId],
        ),
      );
      for (const org of rows) {
        const owners = await db.withTenant(org.tenant_id, (tx) => ownerCount(tx));
        if (owners <= 1) throw new AppError('LAST_OWNER', `You are the last owner of "${org.name}": transfer its ownership or delete it first.`);
      }
    },

    /** Removes every membership of a deleted account. */
    async removeUserEverywhere(userId: string): Promise<void> {
      const { rows } = await db.withUser(userId, (tx) => tx.query<{ tenant_id: string }>('select tenant_id from memberships where user_id = $1', [userId]));
      for (const { tenant_id: orgId } of rows) {
        const event = await audit.prepare({ tenantId: orgId, action: 'member.removed', target: { type: 'user', id: userId }, data: { reason: 'account-deleted' } });
        await db.withTenant(orgId, async (tx) => {
          await lockOrg(tx);
          await tx.query('delete from memberships where user_id = $1', [userId]);
          await audit.append(tx, event);
        });
        await evictOrg(orgId);
      }
    },
  };
}
