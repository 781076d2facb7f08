/**
 * Every route of the console, in ONE list: the router (main.tsx) and the navigation (Layout.tsx)
 * are built from it. A page lives in pages/<area>/ and is loaded when first visited (its own
 * chunk), so the first screen ships only the shell and the page it shows.
 *
 * `nav` puts the route in the main navigation (in this order); `auth` says who sees that entry:
 * 'signed-out' (Sign in), 'signed-in' (the rest). Pages check the session themselves
 * (RequireSession) so a deep link works either way.
 */
import { lazy, type ComponentType, type LazyExoticComponent } from 'react';

export interface ConsoleRoute {
  /** Path under /console/ (no leading slash; '' is the home page; may use :params and a trailing *). */
  path: string;
  /** The navigation label, when the route is in the navigation. */
  nav?: string;
  auth?: 'signed-in' | 'signed-out';
  page: LazyExoticComponent<ComponentType>;
}

export const ROUTES: readonly ConsoleRoute[] = [
  { path: '', page: lazy(() => import('./pages/home/HomePage.tsx')) },
  { path: 'sign-in', nav: 'Sign in', auth: 'signed-out', page: lazy(() => import('./pages/sign-in/SignInPage.tsx')) },
  { path: 'sign-up', page: lazy(() => import('./pages/sign-up/SignUpPage.tsx')) },
  { path: 'reset-password', page: lazy(() => import('./pages/reset/ResetPasswordPage.tsx')) },
  { path: 'me', nav: 'Me', auth: 'signed-in', page: lazy(() => import('./pages/me/MePage.tsx')) },
  { path: 'orgs', nav: 'Orgs & workspaces', auth: 'signed-in', page: lazy(() => import('./pages/orgs/OrgsPage.tsx')) },
  { path: 'api-keys', nav: 'API keys', auth: 'signed-in', page: lazy(() => import('./pages/api-keys/ApiKeysPage.tsx')) },
  { path: 'gateway', nav: 'Gateway', auth: 'signed-in', page: lazy(() => import('./pages/gateway/GatewayPage.tsx')) },
  { path: 'mcp', nav: 'MCP', auth: 'signed-in', page: lazy(() => import('./pages/mcp/McpPage.tsx')) },
  { path: 'audit', nav: 'Audit', auth: 'signed-in', page: lazy(() => import('./pages/audit/AuditPage.tsx')) },
  { path: 'operator', nav: 'Operator', auth: 'signed-in', page: lazy(() => import('./pages/operator/OperatorPage.tsx')) },
  { path: 'confirm-email', page: lazy(() => import('./pages/me/ConfirmEmailPage.tsx')) },
  { path: 'orgs/accept', page: lazy(() => import('./pages/orgs/AcceptInvitationPage.tsx')) },
  { path: 'oauth/consent', page: lazy(() => import('./pages/oauth/ConsentPage.tsx')) },
  { path: '*', page: lazy(() => import('./pages/not-found/NotFoundPage.tsx')) },
];
