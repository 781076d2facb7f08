/**
 * The audit actions tenancy records (AUDIT-1), in the org's log: orgs, members, invitations,
 * workspaces, a member refused by the role matrix, and the org's keys shredded when it is deleted.
 */
export const TENANCY_AUDIT_ACTIONS = [
  'org.created',
  'org.updated',
  'org.deleted',
  'org.ownership.transferred',
  'member.role.changed',
  'member.removed',
  'member.left',
  'invitation.created',
  'invitation.revoked',
  'invitation.accepted',
  'workspace.created',
  'workspace.updated',
  'workspace.deleted',
  'workspace.member.role.set',
  'workspace.member.role.cleared',
  // Guards: a member refused by the role matrix.
  'authz.denied',
  // The org's data keys destroyed with it (crypto-shredding).
  'keys.shredded',
] as const;
