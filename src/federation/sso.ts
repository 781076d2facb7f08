/**
 * Enterprise SSO per org (AUTH-9), one service over its parts: connections (sso-connections.ts),
 * email domains (sso-domains.ts), the "SSO required" setting and sign-in policy (sso-policy.ts),
 * and sign-in with provisioning (sso-sign-in.ts, sso-provisioning.ts).
 */
import { createSsoConnections } from './sso-connections.ts';
import { listPendingClaims } from './sso-domain-claims.ts';
import { createSsoDomains } from './sso-domains.ts';
import { createSsoPolicy } from './sso-policy.ts';
import { createSsoSignIn } from './sso-sign-in.ts';
import type { SsoDeps } from './sso-shared.ts';

export { isInternalHost } from './sso-connections.ts';
export { normalizeDomain } from './sso-domains.ts';
export { SSO_SEALED_COLUMNS, type ConnectionChanges, type ConnectionView, type DomainView, type NewConnection, type SsoDeps } from './sso-shared.ts';

export function createSso(deps: SsoDeps) {
  return {
    ...createSsoConnections(deps),
    ...createSsoDomains(deps),
    ...createSsoPolicy(deps),
    ...createSsoSignIn(deps),
    listPendingClaims: (query: { cursor?: string | undefined; limit: number }) => listPendingClaims(deps.db, query),
  };
}

export type Sso = ReturnType<typeof createSso>;
