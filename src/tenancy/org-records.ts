/**
 * Organizations themselves (TEN-1): create (within the per-user limit), list, read, update, delete
 * with crypto-shredding of the org's data keys.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { iso, lockOrg, roleOf, type OrgView, type TenancyDeps } from './org-core.ts';
import type { Role } from './permissions.ts';

export function orgRecords(deps: TenancyDeps) {
  const { db, keyring, evictOrg, limits, audit } = deps;
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
  };
}
