/**
 * Organizations and their members (TEN-1), one service built from its parts by concern:
 * org-records.ts (the orgs themselves), org-members.ts (memberships and ownership),
 * org-accounts.ts (what deleting an account asks), over org-core.ts (views, lock, shared reads).
 */
import { orgAccountHooks } from './org-accounts.ts';
import type { TenancyDeps } from './org-core.ts';
import { orgMembers } from './org-members.ts';
import { orgRecords } from './org-records.ts';

export { lockOrg, type MemberView, type OrgView, type TenancyDeps } from './org-core.ts';

export function createOrgs(deps: TenancyDeps) {
  return { ...orgRecords(deps), ...orgMembers(deps), ...orgAccountHooks(deps) };
}

export type Orgs = ReturnType<typeof createOrgs>;
