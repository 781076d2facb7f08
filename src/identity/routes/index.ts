/**
 * The accounts, sessions and second-factor API (AUTH-1..8, AUTH-10), one file per resource in this
 * folder. Paths are part of the product; bodies are documented by their schemas in OpenAPI.
 */
import type { FastifyRequest } from 'fastify';
import type { Feature } from '../../server/route.ts';
import type { Accounts } from '../accounts.ts';
import { DEVICE_COOKIE } from '../devices.ts';
import type { EmailChange } from '../email-change.ts';
import { MFA_SEALED_COLUMNS, type Mfa } from '../mfa.ts';
import type { Sessions } from '../sessions.ts';
import type { Social } from '../social.ts';
import { adminUserRoutes } from './admin-users.ts';
import { emailChangeRoutes } from './email.ts';
import { IDENTITY_ERROR_CODES } from './errors.ts';
import { meRoutes } from './me.ts';
import { mfaRoutes } from './mfa.ts';
import { passwordRoutes } from './password.ts';
import { sessionRoutes } from './sessions.ts';
import { signInRoutes } from './sign-in.ts';
import { signUpRoutes } from './sign-up.ts';
import { socialRoutes } from './social.ts';
import { returnRoute } from '../return-url.ts';

export { IDENTITY_ERROR_CODES } from './errors.ts';

/** The accounts feature, bound to its services. */
export function createIdentityFeature(deps: {
  accounts: Accounts;
  sessions: Sessions;
  mfa: Mfa;
  social?: Social;
  emailChange?: EmailChange;
  publicOrigin?: string;
  /** auth.returnUrls: where a social sign-in in redirect mode may send the browser besides the console. */
  returnUrls?: readonly string[];
  /** social.providers: listed (id, display name) for sign-in pages. */
  socialProviders?: ReadonlyArray<{ id: string; preset?: string | undefined }>;
  allowedOrigins: () => readonly string[];
  now: () => number;
}): Feature {
  const { accounts, sessions, mfa, now } = deps;
  const clientOf = (request: FastifyRequest) => ({ ip: request.ip, userAgent: request.headers['user-agent'], deviceCookie: request.cookies[DEVICE_COOKIE] });
  return {
    id: 'accounts',
    errorCodes: IDENTITY_ERROR_CODES,
    sealedColumns: MFA_SEALED_COLUMNS,
    routes: [
      ...signUpRoutes({ accounts }),
      ...signInRoutes({ accounts, now }),
      ...sessionRoutes({ sessions, allowedOrigins: deps.allowedOrigins, now }),
      ...passwordRoutes({ accounts }),
      ...meRoutes({ accounts }),
      ...mfaRoutes({ accounts, mfa }),
      ...adminUserRoutes({ accounts }),
      ...(deps.emailChange ? emailChangeRoutes(deps.emailChange) : []),
      returnRoute({ publicOrigin: deps.publicOrigin ?? '', returnUrls: deps.returnUrls ?? [] }),
      ...(deps.social ? socialRoutes(deps.social, accounts, { publicOrigin: deps.publicOrigin ?? '', returnUrls: deps.returnUrls ?? [], providers: deps.socialProviders ?? [] }, clientOf, now) : []),
    ],
  };
}
