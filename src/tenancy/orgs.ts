/**
 * Organizations and their members (TEN-1). Every membership change locks the org row first, so
 * concurrent changes serialise: no lost update, and the owner count read inside the transaction
 * is the one the change commits against (an org can never end without an owner).
 *
 * size-exception: createOrgs is one factory closure of small functions over shared services; split
 * by concern is pending (issue 17); no measured reason to keep it whole.
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { canGrant, compareRoles, isRole, type Role } from './permissions.ts';

export interface OrgView {
  id: string;
  name: string;
  role: Role;
  requireMfa: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface MemberView {
  userId: string;
  email: string;
  role: Role;
  joinedAt: string;
}

export interface TenancyDeps {
  db: Db;
  /** Every change is appended to the org's audit log in the same transaction. */
  audit: AuditLog;
  keyring: Keyring;
  /** Evicts cached authority for an org on every node; called after the change commits. */
  evictOrg: (orgId: string) => Promise<void>;
  limits: { maxOrgsPerUser: number; maxWorkspacesPerOrg: number; maxPendingInvitations: number; invitationTtlMs: number };
  now: () => number;
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

function roleOf(value: unknown): Role {
  if (!isRole(value)) throw new Error('a stored role is outside the enum');
  return value;
}

/** Locks the org row for the rest of the transaction; NOT_FOUND when it is gone. */
export async function lockOrg(tx: Queryable): Promise<void> {
  const { rowCount } = await tx.query('select tenant_id from orgs for update');
  if (rowCount === 0) throw new AppError('NOT_FOUND');
}

async function memberRole(tx: Queryable, userId: string): Promise<Role | null> {
  const { rows } = await tx.query<{ role: string }>('select role from memberships where user_id = $1', [userId]);
  return rows[0] ? roleOf(rows[0].role) : null;
}

async function ownerCount(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ n: number }>("select count(*)::int as n from memberships where role = 'owner'");
  return rows[0]?.n ?? 0;
}

export function createOrgs(deps: TenancyDeps) {
  const { db, keyring, evictOrg, limits, audit } = deps;

  /** Re-reads the actor's role under the lock: the cached one may predate a concurrent change. */
  async function actorRole(tx: Queryable, actorId: string): Promise<Role> {
    const role = await memberRole(tx, actorId);
    if (role === null) throw new AppError('NOT_FOUND');
    return role;
  }

  return {
    async create(userId: string, name: string): Promise<OrgView> {
      const { rows } = await db.withUser(userId, (tx) =>
        tx.query<{ n: number }>("select count(*)::int as n from memberships where user_id = $1 and role = 'owner'", [userId]),
      );
      if ((rows[0]?.n ?? 0) >= limits.maxOrgsPerUser) throw new AppError('TENANCY_LIMIT_REACHED', `You may own at most ${limits.maxOrgsPerUser} organizations.`);
      const id = randomUUID();
      // The registry row first (no RLS; the app may only insert there), then the org's own rows in its context.
      await db.query("insert into tenants (id, kind) values ($1, 'org')", [id]);
      const event = await audit.prepare({ tenantId: id, action: 'org.created', target: { type: 'org', id } });
      const org = await db.withTenant(id, async (tx) => {
        const inserted = await tx.query<{ created_at: Date; updated_at: Date }>(
          'insert into orgs (tenant_id, name, created_by) values ($1, $2, $3) returning created_at, updated_at',
          [id, name, userId],
        );
        await tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'owner')", [id, userId]);
        await audit.append(tx, event);
        const row = inserted.rows[0];
        return { id, name, role: 'owner' as const, requireMfa: false, createdAt: iso(row?.created_at), updatedAt: iso(row?.updated_at) };
      });
      return org;
    },

    async listMine(userId: string): Promise<OrgView[]> {
      const { rows } = await db.withUser(userId, (tx) =>
        tx.query<{ tenant_id: string; name: string; role: string; require_mfa: boolean; created_at: Date; updated_at: Date }>(
          `select o.tenant_id, o.name, m.role, o.require_mfa, o.created_at, o.updated_at
             from memberships m join orgs o on o.tenant_id = m.tenant_id
            where m.user_id = $1
            order by o.created_at, o.tenant_id`,
          [userId],
        ),
      );
      return rows.map((r) => ({ id: r.tenant_id, name: r.name, role: roleOf(r.role), requireMfa: r.require_mfa, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) }));
    },

    async get(orgId: string, role: Role): Promise<OrgView> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ name: string; require_mfa: boolean; created_at: Date; updated_at: Date }>('select name, require_mfa, created_at, updated_at from orgs'),
      );
      const row = rows[0];
      if (!row) throw new AppError('NOT_FOUND');
      return { id: orgId, name: row.name, role, requireMfa: row.require_mfa, createdAt: iso(row.created_at), updatedAt: iso(row.updated_at) };
    },

    /** Renames and/or sets the MFA requirement; a change of the requirement applies on every node at once. */
    async update(orgId: string, role: Role, changes: { name?: string | undefined; requireMfa?: boolean | undefined }): Promise<OrgView> {
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'org.updated',
        target: { type: 'org', id: orgId },
        data: { renamed: changes.name !== undefined, requireMfa: changes.requireMfa ?? null },
      });
      const { rows } = await db.withTenant(orgId, async (tx) => {
        const updated = await tx.query<{ name: string; require_mfa: boolean; created_at: Date; updated_at: Date }>(
          'update orgs set name = coalesce($1, name), require_mfa = coalesce($2, require_mfa), updated_at = now() returning name, require_mfa, created_at, updated_at',
          [changes.name ?? null, changes.requireMfa ?? null],
        );
        if (updated.rowCount > 0) await audit.append(tx, event);
        return updated;
      });
      const row = rows[0];
      if (!row) throw new AppError('NOT_FOUND');
      if (changes.requireMfa !== undefined) await evictOrg(orgId);
      return { id: orgId, name: row.name, role, requireMfa: row.require_mfa, createdAt: iso(row.created_at), updatedAt: iso(row.updated_at) };
    },

    /** Deletes the org and everything in it, and crypto-shreds its data keys. */
    async remove(orgId: string): Promise<void> {
      // The org's audit log outlives it (append-only); its sealed personal fields are shredded with the keys.
      const event = await audit.prepare({ tenantId: orgId, action: 'org.deleted', target: { type: 'org', id: orgId } });
      await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        await tx.query('delete from orgs');
        await audit.append(tx, event);
      });
      await evictOrg(orgId);
      const destroyed = await keyring.destroyKeys({ tenantId: orgId });
      await audit.record({ tenantId: orgId, action: 'keys.shredded', target: { type: 'org', id: orgId }, data: { keys: destroyed }, personal: false });
    },

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

export type Orgs = ReturnType<typeof createOrgs>;
