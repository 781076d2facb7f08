/**
 * The role matrix (TEN-1), as data: which role holds which permission, once, here. Routes
 * declare the permission they need next to their guard; nothing else decides by role name.
 *
 * Roles are ordered owner > admin > editor > viewer. A workspace role can narrow the org role,
 * never widen it; nobody grants, invites to or assigns a role above their own.
 */

export const ROLES = ['owner', 'admin', 'editor', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Every permission a route can declare. */
export const PERMISSIONS = [
  'org.read',
  'org.update',
  'org.delete',
  'org.transfer',
  'members.read',
  'members.manage',
  'invitations.manage',
  'workspaces.read',
  'workspaces.create',
  'workspaces.update',
  'workspaces.delete',
  'workspace.members.manage',
  'apikeys.read',
  'apikeys.manage',
  'providers.manage',
  'mcp.manage',
  'usage.read',
  'audit.read',
  'budgets.read',
  'budgets.manage',
  'guard.manage',
  'sso.manage',
  'webhooks.read',
  'webhooks.manage',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const viewer: readonly Permission[] = ['org.read', 'members.read', 'workspaces.read', 'apikeys.read', 'usage.read', 'budgets.read'];
const editor: readonly Permission[] = [...viewer, 'apikeys.manage'];
const admin: readonly Permission[] = [
  ...editor,
  'org.update',
  'members.manage',
  'invitations.manage',
  'workspaces.create',
  'workspaces.update',
  'workspaces.delete',
  'workspace.members.manage',
  'providers.manage',
  'mcp.manage',
  'audit.read',
  'budgets.manage',
  'guard.manage',
  'sso.manage',
  'webhooks.read',
  'webhooks.manage',
];
const owner: readonly Permission[] = [...admin, 'org.delete', 'org.transfer'];

/** The matrix: role -> permissions it holds. */
export const ROLE_PERMISSIONS: Readonly<Record<Role, ReadonlySet<Permission>>> = Object.freeze({
  owner: new Set(owner),
  admin: new Set(admin),
  editor: new Set(editor),
  viewer: new Set(viewer),
});

const RANK: Readonly<Record<Role, number>> = Object.freeze({ owner: 4, admin: 3, editor: 2, viewer: 1 });

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

export function isPermission(value: unknown): value is Permission {
  return typeof value === 'string' && (PERMISSIONS as readonly string[]).includes(value);
}

/**
 * Whether a role holds a permission.
 * @example can('editor', 'apikeys.manage') // true
 */
export function can(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].has(permission);
}

/** Whether `actor` may give someone the role `target` (never above its own). */
export function canGrant(actor: Role, target: Role): boolean {
  return RANK[target] <= RANK[actor];
}

/** The role that applies in a workspace: the workspace role narrows the org role, never widens it. */
export function effectiveWorkspaceRole(orgRole: Role, workspaceRole: Role | null): Role {
  if (workspaceRole === null) return orgRole;
  return RANK[workspaceRole] < RANK[orgRole] ? workspaceRole : orgRole;
}

/** Roles ordered from most to least powerful. */
export function compareRoles(a: Role, b: Role): number {
  return RANK[b] - RANK[a];
}
