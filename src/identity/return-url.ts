/**
 * Redirect mode of the browser sign-ins that end on a callback (social and SSO; UI-3): a start
 * given `returnTo` makes its callback answer with a 303 instead of JSON, so the browser lands back
 * in the console (a path under /console/) or at a return URL of the operator's app listed in
 * `auth.returnUrls`, never on a JSON body.
 *
 * A return URL is checked strictly, at the start and again at the callback (the cookie carrying
 * it is never trusted on its own): no control characters, backslashes or credentials; a relative
 * one must resolve on this node's origin under /console/; an absolute one must be http(s), have
 * the exact origin of an allowed entry and a path under that entry's path (on a segment boundary,
 * after the URL parser's normalisation of dot segments). Anything else is refused with 400
 * RETURN_URL_NOT_ALLOWED: an open redirect is never one parameter away.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';

/** Carries the checked return URL from the start to the callback (SameSite=None: the SAML ACS is a cross-site POST). */
export const RETURN_COOKIE = '__Host-gh_return';
export const RETURN_COOKIE_OPTIONS = { httpOnly: true, secure: true, sameSite: 'none' as const, path: '/', maxAge: 600 };
const CONSOLE_PREFIX = '/console/';
const CONSOLE_SIGN_IN = '/console/sign-in';

function underPath(path: string, prefix: string): boolean {
  if (prefix === '/' || path === prefix) return true;
  const base = prefix.endsWith('/') ? prefix : `${prefix}/`;
  return path.startsWith(base);
}

/**
 * The return URL to redirect to (normalised), or throws RETURN_URL_NOT_ALLOWED.
 * @example checkReturnUrl('/console/me', 'https://auth.example.com', []) === '/console/me'
 */
export function checkReturnUrl(value: string, publicOrigin: string, allowed: readonly string[]): string {
  // Browsers and URL parsers drop tabs and newlines and read "\" as "/": "/\t/evil" and "/\evil" become "//evil".
  // eslint-disable-next-line no-control-regex
  if (value.length === 0 || value.length > 2000 || /[\u0000-\u001f\u007f\\]/.test(value)) throw new AppError('RETURN_URL_NOT_ALLOWED');
  let url: URL;
  try {
    url = new URL(value, publicOrigin);
  } catch {
    throw new AppError('RETURN_URL_NOT_ALLOWED');
  }
  if (url.username !== '' || url.password !== '' || (url.protocol !== 'https:' && url.protocol !== 'http:')) throw new AppError('RETURN_URL_NOT_ALLOWED');
  if (value.startsWith('/')) {
    // Relative: this node, the console only ("//host" is absolute and fails the origin check).
    if (url.origin !== publicOrigin || !underPath(url.pathname, CONSOLE_PREFIX)) throw new AppError('RETURN_URL_NOT_ALLOWED');
    return `${url.pathname}${url.search}${url.hash}`;
  }
  for (const entry of allowed) {
    const base = new URL(entry);
    if (url.origin === base.origin && underPath(url.pathname, base.pathname)) return url.href;
  }
  throw new AppError('RETURN_URL_NOT_ALLOWED');
}

/** Where the console finishes a sign-in the callback could not: a fragment (never sent to a server, never logged). */
function consoleStep(params: Record<string, string>): string {
  return `${CONSOLE_SIGN_IN}#${new URLSearchParams(params).toString()}`;
}

/** What a callback produced, in redirect mode. */
export type CallbackOutcome =
  | { kind: 'signedIn' }
  | { kind: 'mfaRequired'; mfaToken: string; methods: readonly string[] }
  | { kind: 'linkRequired'; linkToken: string }
  | { kind: 'refused'; code: string };

/** Answers a callback in redirect mode: 303 to the return URL, or to the console's sign-in page for what is left to do. */
export function redirectAfterCallback(reply: FastifyReply, outcome: CallbackOutcome, returnTo: string): null {
  reply.clearCookie(RETURN_COOKIE, { ...RETURN_COOKIE_OPTIONS, maxAge: undefined });
  reply.header('cache-control', 'no-store');
  let location: string;
  if (outcome.kind === 'signedIn') location = returnTo;
  else if (outcome.kind === 'mfaRequired') location = consoleStep({ mfaToken: outcome.mfaToken, methods: outcome.methods.join(','), next: returnTo });
  else if (outcome.kind === 'linkRequired') location = consoleStep({ linkToken: outcome.linkToken, next: returnTo });
  else location = consoleStep({ error: outcome.code });
  reply.code(303).header('location', location);
  return null;
}

/** The checked return URL a callback's request carries (its cookie), or undefined for JSON mode. Throws when present but not allowed. */
export function returnUrlOf(cookie: string | undefined, publicOrigin: string, allowed: readonly string[]): string | undefined {
  if (cookie === undefined || cookie === '') return undefined;
  return checkReturnUrl(cookie, publicOrigin, allowed);
}

/**
 * GET /v1/auth/return?to=: the console's way to finish at an app's return URL after it completed a
 * second step or a link (it cannot judge the allowlist itself): checked like a start's returnTo,
 * then a 303; anything else is 400 RETURN_URL_NOT_ALLOWED, so this is never an open redirector.
 */
export function returnRoute(where: { publicOrigin: string; returnUrls: readonly string[] }): RouteDef {
  return defineRoute({
    method: 'GET',
    url: '/v1/auth/return',
    summary: 'Redirects (303) to a return URL allowed for sign-ins: a console path or one under `auth.returnUrls`; anything else is refused.',
    guard: { kind: 'public' },
    permission: null,
    rateCategory: 'auth',
    schema: { querystring: z.strictObject({ to: z.string().max(2000) }), response: { 303: z.null() } },
    handler: async ({ query, reply }) => {
      const to = checkReturnUrl(query.to, where.publicOrigin, where.returnUrls);
      reply.header('cache-control', 'no-store').code(303).header('location', to);
      return null;
    },
  }) as unknown as RouteDef;
}
