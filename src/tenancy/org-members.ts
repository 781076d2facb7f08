/**
 * Memberships of an org (TEN-1): list, change a role, remove or leave, transfer ownership. Each
 * change locks the org row and re-reads the actor's role under the lock.
 */
import { AppError } from '../server/errors.ts';
import { actorRole, iso, lockOrg, memberRole, ownerCount, roleOf, type MemberView, type TenancyDeps } from './org-core.ts';
import { canGrant, compareRoles, type Role } from './permissions.ts';

export function orgMembers(deps: TenancyDeps) {
  const { db, evictOrg, audit } = deps;
  return {
    async listMembers(orgId: string): Promise<MemberView[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ user_id: string; email: string; role: string; created_at: Date }>(
          `select m.user_id, u.email, m.role, m.created_at
             from memberships m join users u on u.id = m.user_id
            order by m.created_at, m.user_id`,
        ),
      );
      return rows.map((r) => ({ userId: r.user_id, email: r.email, role: roleOf(r.role), joinedAt: iso(r.created_at) }));
    },

    async changeRole(orgId: string, actorId: string, targetId: string, role: Role): Promise<MemberView> {
      const event = await audit.prepare({ tenantId: orgId, action: 'member.role.changed', target: { type: 'user', id: targetId } });
      const member = await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        const mine = await actorRole(tx, actorId);
        const current = await memberRole(tx, targetId);
        if (current === null) throw new AppError('NOT_A_MEMBER');
        if (!canGrant(mine, role) || !canGrant(mine, current)) throw new AppError('ROLE_ABOVE_OWN');
        if (current === 'owner' && role !== 'owner' && (await ownerCount(tx)) <= 1) throw new AppError('LAST_OWNER');
        const { rows } = await tx.query<{ email: string; created_at: Date }>(
          `update memberships m set role = $2, updated_at = now() from users u
            where m.user_id = $1 and u.id = m.user_id
        returning u.email, m.created_at`,
          [targetId, role],
        );
        await audit.append(tx, event, { from: current, to: role });
        const row = rows[0];
        return { userId: targetId, email: row?.email ?? '', role, joinedAt: iso(row?.created_at) };
      });
      await evictOrg(orgId);
      return member;
    },

    /** Removes another member (members.manage) or, with actor = target, leaves. */
    async removeMember(orgId: string, actorId: string, targetId: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: actorId === targetId ? 'member.left' : 'member.removed', target: { type: 'user', id: targetId } });
      await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        const mine = await actorRole(tx, actorId);
        const current = await memberRole(tx, targetId);
        if (current === null) throw new AppError('NOT_A_MEMBER');
        if (actorId !== targetId && compareRoles(mine, current) > 0) throw new AppError('ROLE_ABOVE_OWN');
        if (current === 'owner' && (await ownerCount(tx)) <= 1) throw new AppError('LAST_OWNER');
        await tx.query('delete from memberships where user_id = $1', [targetId]);
        // Removed by an admin, not left: the org's SSO must not provision them again just in
        // time (see the member_removals migration). A new invitation they accept lifts it.
        if (actorId !== targetId) {
          await tx.query(
            `insert into member_removals (tenant_id, user_id, removed_by, removed_at) values ($1, $2, $3, now())
             on conflict (tenant_id, user_id) do update set removed_by = excluded.removed_by, removed_at = excluded.removed_at`,
            [orgId, targetId, actorId],
          );
        }
        await audit.append(tx, event, { role: current });
      });
      await evictOrg(orgId);
    },

    /** The current owner makes another member owner and becomes admin. */
    async transferOwnership(orgId: string, actorId: string, targetId: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'org.ownership.transferred', target: { type: 'user', id: targetId } });
      await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        if ((await actorRole(tx, actorId)) !== 'owner') throw new AppError('FORBIDDEN');
        if (actorId === targetId) throw new AppError('BAD_REQUEST', 'You already own this organization.');
        if ((await memberRole(tx, targetId)) === null) throw new AppError('NOT_A_MEMBER');
        await tx.query("update memberships set role = 'owner', updated_at = now() where user_id = $1", [targetId]);
        await tx.query("update memberships set role = 'admin', updated_at = now() where user_id = $1", [actorId]);
        await tx.query('delete from workspace_members where user_id = $1', [targetId]);
        await audit.append(tx, event);
      });
      await evictOrg(orgId);
    },
  };
}
