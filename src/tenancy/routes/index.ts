/**
 * The organizations API (TEN-1). Each tenant route declares the permission it needs; the
 * authorizer (authority.ts) resolves `:org` (and `:ws`), checks current membership, and 404s
 * callers who are not members before the handler runs inside that tenant's context.
 *
 * One file per resource in this folder: orgs.ts, members.ts, invitations.ts, workspaces.ts.
 */
import type { Feature, Principal } from '../../server/route.ts';
import { TENANCY_ERROR_CODES } from '../errors.ts';
import type { Invitations } from '../invitations.ts';
import type { Orgs } from '../orgs.ts';
import type { Workspaces } from '../workspaces.ts';
import { invitationRoutes } from './invitations.ts';
import { memberRoutes } from './members.ts';
import { orgRoutes } from './orgs.ts';
import { workspaceRoutes } from './workspaces.ts';

export function createTenancyFeature(deps: { orgs: Orgs; workspaces: Workspaces; invitations: Invitations; mfaSatisfied?: ((principal: Principal) => Promise<boolean>) | undefined }): Feature {
  return {
    id: 'orgs',
    errorCodes: TENANCY_ERROR_CODES,
    routes: [...orgRoutes(deps), ...memberRoutes(deps.orgs), ...invitationRoutes(deps.invitations), ...workspaceRoutes(deps.workspaces)],
  };
}
