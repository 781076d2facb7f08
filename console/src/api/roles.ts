/**
 * What the member's role lets the console offer. The API stays the authority: this only decides
 * whether a form shows its submit controls or a read-only view with a note naming the role needed.
 *
 * The roles are nested (owner > admin > editor > viewer, each holding every permission of the
 * ones below), so a permission is described by the least role that holds it. The table is a copy
 * of the server's matrix (src/tenancy/permissions.ts) for the permissions the console's forms
 * need; test/console/roles.test.ts checks it against the matrix for every role.
 */
export type Role = 'owner' | 'admin' | 'editor' | 'viewer';
const RANK: Readonly<Record<Role, number>> = { owner: 4, admin: 3, editor: 2, viewer: 1 };

/** The least role that holds each permission a console form needs. */
export const LEAST_ROLE = {
  'org.update': 'admin',
  'workspaces.create': 'admin',
  'apikeys.manage': 'editor',
  'providers.manage': 'admin',
  'budgets.manage': 'admin',
  'sso.manage': 'admin',
  'members.manage': 'admin',
  'invitations.manage': 'admin',
} as const satisfies Record<string, Role>;
export type FormPermission = keyof typeof LEAST_ROLE;

function isRole(value: unknown): value is Role {
  return typeof value === 'string' && value in RANK;
}

/**
 * Whether `role` (as the API gave it) may use a form needing `permission`; false for an unknown
 * or missing role (the form is shown read-only, never the other way round).
 * @example allows('viewer', 'budgets.manage') // false
 */
export function allows(role: string | undefined, permission: FormPermission): boolean {
  return isRole(role) && RANK[role] >= RANK[LEAST_ROLE[permission]];
}
