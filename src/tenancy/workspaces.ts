/**
 * Workspaces inside an org, and per-workspace roles that narrow (never widen) the org role.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { lockOrg, type TenancyDeps } from './org-core.ts';
import { can, canGrant, compareRoles, effectiveWorkspaceRole, isRole, type Role } from './permissions.ts';

export interface WorkspaceView {
  id: string;
  name: string;
  createdAt: string;
  updatedAt: string;
}

export interface WorkspaceMemberView {
  userId: string;
  email: string;
  orgRole: Role;
  /** The narrowing role set for this workspace, or null when the org role applies. */
  workspaceRole: Role | null;
  effectiveRole: Role;
}

interface WorkspaceRow {
  id: string;
  name: string;
  created_at: Date;
  updated_at: Date;
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const view = (r: WorkspaceRow): WorkspaceView => ({ id: r.id, name: r.name, createdAt: iso(r.created_at), updatedAt: iso(r.updated_at) });

/**
 * Whether a member whose role here is `narrowed` could clear their own narrowing again: that
 * needs the permission to manage workspace roles and a role not below the org role it restores
 * (the same checks setMemberRole applies, read from the matrix).
 */
function canUndo(narrowed: Role, orgRole: Role): boolean {
  return can(narrowed, 'workspace.members.manage') && canGrant(narrowed, orgRole);
}

export function createWorkspaces(deps: TenancyDeps) {
  return { ...workspaceRecords(deps), ...workspaceMembers(deps) };
}

/** Workspaces themselves: list, create (within the org's limit), read, rename, remove. */
function workspaceRecords(deps: TenancyDeps) {
  const { db, evictOrg, limits, audit } = deps;
  return {
    async list(orgId: string): Promise<WorkspaceView[]> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<WorkspaceRow>('select id, name, created_at, updated_at from workspaces order by created_at, id'));
      return rows.map(view);
    },

    async create(orgId: string, name: string): Promise<WorkspaceView> {
      const wsId = randomUUID();
      const event = await audit.prepare({ tenantId: orgId, action: 'workspace.created', target: { type: 'workspace', id: wsId } });
      const ws = await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        const count = await tx.query<{ n: number }>('select count(*)::int as n from workspaces');
        if ((count.rows[0]?.n ?? 0) >= limits.maxWorkspacesPerOrg) {
          throw new AppError('TENANCY_LIMIT_REACHED', `An organization may have at most ${limits.maxWorkspacesPerOrg} workspaces.`);
        }
        const { rows } = await tx.query<WorkspaceRow>('insert into workspaces (id, tenant_id, name) values ($1, $2, $3) returning id, name, created_at, updated_at', [
          wsId,
          orgId,
          name,
        ]);
        const row = rows[0];
        if (!row) throw new Error('insert returned no row');
        await audit.append(tx, event);
        return view(row);
      });
      // The authority cache lists an org's workspaces.
      await evictOrg(orgId);
      return ws;
    },

    async get(orgId: string, wsId: string): Promise<WorkspaceView> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<WorkspaceRow>('select id, name, created_at, updated_at from workspaces where id = $1', [wsId]));
      const row = rows[0];
      if (!row) throw new AppError('NOT_FOUND');
      return view(row);
    },

    async rename(orgId: string, wsId: string, name: string): Promise<WorkspaceView> {
      const event = await audit.prepare({ tenantId: orgId, action: 'workspace.updated', target: { type: 'workspace', id: wsId } });
      const { rows } = await db.withTenant(orgId, async (tx) => {
        const updated = await tx.query<WorkspaceRow>('update workspaces set name = $2, updated_at = now() where id = $1 returning id, name, created_at, updated_at', [wsId, name]);
        if (updated.rowCount > 0) await audit.append(tx, event);
        return updated;
      });
      const row = rows[0];
      if (!row) throw new AppError('NOT_FOUND');
      return view(row);
    },

    async remove(orgId: string, wsId: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'workspace.deleted', target: { type: 'workspace', id: wsId } });
      const { rowCount } = await db.withTenant(orgId, async (tx) => {
        const deleted = await tx.query('delete from workspaces where id = $1', [wsId]);
        if (deleted.rowCount > 0) await audit.append(tx, event);
        return deleted;
      });
      if (rowCount === 0) throw new AppError('NOT_FOUND');
      await evictOrg(orgId);
    },
  };
}

/** Who is in a workspace and with which narrowed role. */
function workspaceMembers(deps: TenancyDeps) {
  const { db, evictOrg, audit } = deps;
  return {
    async listMembers(orgId: string, wsId: string): Promise<WorkspaceMemberView[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ user_id: string; email: string; role: string; ws_role: string | null }>(
          `select m.user_id, u.email, m.role, wm.role as ws_role
             from memberships m
             join users u on u.id = m.user_id
             left join workspace_members wm on wm.tenant_id = m.tenant_id and wm.workspace_id = $1 and wm.user_id = m.user_id
            order by m.created_at, m.user_id`,
          [wsId],
        ),
      );
      return rows.flatMap((r) => {
        if (!isRole(r.role)) return [];
        const wsRole = isRole(r.ws_role) ? r.ws_role : null;
        return [{ userId: r.user_id, email: r.email, orgRole: r.role, workspaceRole: wsRole, effectiveRole: effectiveWorkspaceRole(r.role, wsRole) }];
      });
    },

    /**
     * Sets (role) or clears (null) a member's narrowing role in a workspace. The actor's
     * effective role there bounds both the member's current and new role. `actorId` names the
     * actor so that narrowing oneself out of the power to undo it is refused.
     */
    async setMemberRole(orgId: string, wsId: string, actorRole: Role, targetId: string, role: Role | null, actorId?: string): Promise<WorkspaceMemberView> {
      const event = await audit.prepare({
        tenantId: orgId,
        action: role === null ? 'workspace.member.role.cleared' : 'workspace.member.role.set',
        target: { type: 'user', id: targetId },
        data: { workspace: wsId, role },
      });
      const member = await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        const { rows } = await tx.query<{ role: string; email: string; ws_role: string | null }>(
          `select m.role, u.email, wm.role as ws_role
             from memberships m
             join users u on u.id = m.user_id
             left join workspace_members wm on wm.tenant_id = m.tenant_id and wm.workspace_id = $2 and wm.user_id = m.user_id
            where m.user_id = $1`,
          [targetId, wsId],
        );
        const row = rows[0];
        if (!row || !isRole(row.role)) throw new AppError('NOT_A_MEMBER');
        const orgRole = row.role;
        const current = effectiveWorkspaceRole(orgRole, isRole(row.ws_role) ? row.ws_role : null);
        if (role !== null && compareRoles(role, orgRole) < 0) {
          throw new AppError('BAD_REQUEST', `A workspace role narrows the org role; this member is ${orgRole} in the organization.`);
        }
        if (actorId === targetId && role !== null && !canUndo(effectiveWorkspaceRole(orgRole, role), orgRole)) {
          throw new AppError('SELF_NARROWING_REFUSED');
        }
        if (!canGrant(actorRole, current) || (role !== null && !canGrant(actorRole, role)) || (role === null && !canGrant(actorRole, orgRole))) {
          throw new AppError('ROLE_ABOVE_OWN');
        }
        if (role === null) {
          await tx.query('delete from workspace_members where workspace_id = $1 and user_id = $2', [wsId, targetId]);
        } else {
          await tx.query(
            `insert into workspace_members (tenant_id, workspace_id, user_id, role) values ($1, $2, $3, $4)
             on conflict (tenant_id, workspace_id, user_id) do update set role = excluded.role`,
            [orgId, wsId, targetId, role],
          );
        }
        await audit.append(tx, event);
        return { userId: targetId, email: row.email, orgRole, workspaceRole: role, effectiveRole: effectiveWorkspaceRole(orgRole, role) };
      });
      await evictOrg(orgId);
      return member;
    },
  };
}

export type Workspaces = ReturnType<typeof createWorkspaces>;
