/** Error codes of organizations, workspaces, memberships and invitations (TEN-1). */
export const TENANCY_ERROR_CODES = {
  LAST_OWNER: {
    status: 409,
    message: 'An organization needs at least one owner.',
    doc: 'The change would leave the organization without an owner: the last owner cannot leave, be demoted or be removed. Transfer ownership first.',
  },
  ROLE_ABOVE_OWN: {
    status: 403,
    message: 'You cannot grant or change a role above your own.',
    doc: 'Nobody grants, invites to or assigns a role above their own, nor changes or removes a member whose role is above theirs.',
  },
  SELF_NARROWING_REFUSED: {
    status: 409,
    message: 'You cannot narrow your own workspace role: you could not undo it.',
    doc: 'A member may not set their own workspace role below their org role: the narrowed role could not clear it again, and only a member of a higher role could. Another owner or admin above you can narrow your role.',
  },
  ALREADY_MEMBER: { status: 409, message: 'This user is already a member.', doc: 'The invited or accepting account is already a member of the organization.' },
  INVITATION_INVALID: {
    status: 400,
    message: 'The invitation is invalid, expired, revoked or already used.',
    doc: 'The invitation token is malformed, unknown, expired, revoked or already accepted.',
  },
  INVITATION_EMAIL_MISMATCH: {
    status: 403,
    message: 'This invitation was sent to another email address.',
    doc: 'Invitations are bound to the invited address: sign in with the account whose verified email it was sent to.',
  },
  TENANCY_LIMIT_REACHED: {
    status: 409,
    message: 'A limit was reached.',
    doc: 'Too many organizations owned (`tenancy.maxOrgsPerUser`), workspaces (`tenancy.maxWorkspacesPerOrg`) or open invitations (`tenancy.maxPendingInvitations`).',
  },
  MFA_REQUIRED_BY_ORG: {
    status: 403,
    message: 'This organization requires a second factor: enroll one and sign in with it.',
    doc: 'The org requires MFA of its members and this session has no verified second factor; also refused when enabling the requirement without one yourself.',
  },
  NOT_A_MEMBER: { status: 404, message: 'No such member.', doc: 'The user named in the path or body is not a member of the organization.' },
} as const;
