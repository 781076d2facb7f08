/**
 * The enterprise SSO API (AUTH-9): org admins manage connections, domains and the SSO-required
 * setting under /v1/orgs/:org/sso (permission sso.manage, sso-admin-routes.ts); an operator
 * verifies a claimed domain; browsers discover, start and finish sign-ins under /v1/auth/sso
 * (sso-sign-in-routes.ts).
 */
import type { Feature } from '../server/route.ts';
import { ssoConnectionRoutes, ssoDomainRoutes } from './sso-admin-routes.ts';
import { SSO_ERROR_CODES } from './sso-errors.ts';
import { ssoSignInRoutes } from './sso-sign-in-routes.ts';
import { SSO_SEALED_COLUMNS, type Sso } from './sso.ts';

export { SSO_ERROR_CODES } from './sso-errors.ts';
export { SAML_ACS_URL } from './sso-sign-in-routes.ts';

export interface SsoFeatureDeps {
  sso: Sso;
  publicOrigin: string;
  /** auth.returnUrls: where a sign-in in redirect mode may land besides the console. */
  returnUrls: readonly string[];
  now: () => number;
}

export function createSsoFeature(deps: SsoFeatureDeps): Feature {
  return {
    id: 'sso',
    errorCodes: SSO_ERROR_CODES,
    sealedColumns: SSO_SEALED_COLUMNS,
    routes: [...ssoConnectionRoutes(deps.sso), ...ssoDomainRoutes(deps.sso), ...ssoSignInRoutes(deps)],
  };
}
