/**
 * Live checks of authentication: stored password hashes asked of the database (AUTH-1), CSRF on a
 * real cookie request to itself (AUTH-4), the social providers' configuration (AUTH-8), the
 * enterprise SSO connections and their IdP certificates (AUTH-9), and the client-token key
 * published for verifiers (GW-6).
 */
import { X509Certificate } from 'node:crypto';
import { ACCESS_COOKIE, CSRF_COOKIE, CSRF_HEADER } from '../server/guards/session.ts';
import { forTenants } from './checks-audit.ts';
import { probeAddress } from './checks-edge.ts';
import type { TrustCheck, TrustCheckResult } from './types.ts';

const DAY_MS = 86_400_000;
/** The origin the CSRF probe claims to come from: never a real one. */
export const CSRF_PROBE_ORIGIN = 'https://csrf-probe.trust-check.invalid';

const passwordsCheck: TrustCheck = {
  control: 'AUTH-1',
  name: 'password-hashes',
  run: async (ctx) => {
    const { argon2MemoryKiB: m, argon2TimeCost: t, argon2Parallelism: p, passwordMinLength, breachCheck } = ctx.config.auth;
    const current = `$argon2id$v=19$m=${m},t=${t},p=${p}$`;
    const { rows } = await ctx.db.query<{ total: number; other: number; older: number }>(
      "select count(*)::int as total, count(*) filter (where password_hash not like '$argon2id$%')::int as other, count(*) filter (where password_hash like '$argon2id$%' and left(password_hash, $1) <> $2)::int as older from users where password_hash is not null",
      [current.length, current],
    );
    const { total = 0, other = 0, older = 0 } = rows[0] ?? {};
    const evidence = [
      `${total} stored passwords: ${total - other} Argon2id, ${other} in another form; ${older} with older parameters (rehashed at their next sign-in to m=${m},t=${t},p=${p})`,
      `shortest password accepted ${passwordMinLength}; breach check ${breachCheck}`,
    ];
    if (other > 0) return { state: 'failed', evidence, why: `${other} stored passwords are not Argon2id hashes` };
    return { state: 'active', evidence };
  },
};

const csrfCheck: TrustCheck = {
  control: 'AUTH-4',
  name: 'csrf-on-cookie-requests',
  run: async (ctx) => {
    if (!ctx.app) return { state: 'not verified', evidence: [], why: 'the server is not built in this process' };
    const app = ctx.app;
    const route = app.gatehouse.routes.find((r) => r.method === 'POST' && (r.guard as { kind?: string }).kind === 'session' && !r.url.includes(':'));
    if (!route) return { state: 'not verified', evidence: [], why: 'no cookie-authenticated POST route without parameters to probe' };
    const probe = (headers: Record<string, string>) =>
      app.inject({ method: 'POST', url: route.url, remoteAddress: probeAddress(), payload: {}, headers: { 'user-agent': 'gatehouse-trust-report', cookie: `${ACCESS_COOKIE}=trust-probe; ${CSRF_COOKIE}=trust-probe`, ...headers } });
    const results: [string, { statusCode: number; body: string }][] = [
      ['without the X-CSRF-Token header', await probe({})],
      ['from an unlisted origin with a matching token', await probe({ origin: CSRF_PROBE_ORIGIN, [CSRF_HEADER]: 'trust-probe' })],
    ];
    const evidence: string[] = [];
    const letThrough: string[] = [];
    for (const [what, res] of results) {
      const code = /"code":"([A-Z_]+)"/.exec(res.body)?.[1];
      evidence.push(`POST ${route.url} with a session cookie ${what}: ${res.statusCode} ${code ?? ''}`.trim());
      if (res.statusCode !== 403 || code !== 'CSRF_FAILED') letThrough.push(what);
    }
    if (letThrough.length > 0) return { state: 'failed', evidence, why: `a cookie request was not refused for CSRF: ${letThrough.join('; ')}` };
    return { state: 'active', evidence };
  },
};

const socialCheck: TrustCheck = {
  control: 'AUTH-8',
  name: 'social-providers',
  run: async (ctx) => {
    const { providers, clientSecrets, allowInsecureRequests } = ctx.config.social;
    if (providers.length === 0) return { state: 'off', evidence: ['no social provider configured'], why: 'social.providers is empty' };
    const withoutSecret = providers.filter((p) => !clientSecrets?.[p.id]).map((p) => p.id);
    const evidence = [`${providers.length} providers (${providers.map((p) => p.id).join(', ')}), ${providers.length - withoutSecret.length} with a client secret from the environment`, `plain HTTP to providers: ${allowInsecureRequests ? 'allowed' : 'refused'}`];
    if (allowInsecureRequests) return { state: 'misconfigured', evidence, why: 'social.allowInsecureRequests lets sign-ins talk to providers over plain HTTP' };
    if (withoutSecret.length > 0) return { state: 'misconfigured', evidence, why: `no client secret for: ${withoutSecret.join(', ')}` };
    return { state: 'active', evidence };
  },
};

/** Days until the latest-expiring certificate of a PEM list; undefined when none parses. */
function certDaysLeft(pems: readonly string[], now: number): number | undefined {
  let best: number | undefined;
  for (const pem of pems) {
    try {
      const days = Math.floor((Date.parse(new X509Certificate(pem).validTo) - now) / DAY_MS);
      best = best === undefined ? days : Math.max(best, days);
    } catch {
      // An unreadable certificate counts as none.
    }
  }
  return best;
}

const ssoCheck: TrustCheck = {
  control: 'AUTH-9',
  name: 'sso-connections',
  run: async (ctx): Promise<TrustCheckResult> => {
    const rows: { id: string; kind: string; enabled: boolean; certs: string[] | null }[] = [];
    const { read, total } = await forTenants(ctx, async (_id, tx) => {
      rows.push(...(await tx.query<{ id: string; kind: string; enabled: boolean; certs: string[] | null }>('select id, kind, enabled, saml_idp_certs as certs from sso_connections')).rows);
    });
    const enabled = rows.filter((r) => r.enabled);
    const evidence = [`${rows.length} SSO connections in ${read} of ${total} tenants read, ${enabled.length} enabled (${enabled.filter((r) => r.kind === 'oidc').length} OIDC, ${enabled.filter((r) => r.kind === 'saml').length} SAML)`];
    if (ctx.config.sso.allowInsecureRequests) return { state: 'misconfigured', evidence, why: 'sso.allowInsecureRequests lets OIDC connections use plain-HTTP issuers' };
    if (enabled.length === 0) return { state: 'off', evidence, why: 'no enabled SSO connection' };
    const expired: string[] = [];
    const soon: string[] = [];
    for (const r of enabled.filter((c) => c.kind === 'saml')) {
      const days = certDaysLeft(r.certs ?? [], ctx.now());
      if (days === undefined || days < 0) expired.push(r.id);
      else if (days < 30) soon.push(`${r.id} (${days} days)`);
    }
    if (soon.length > 0) evidence.push(`SAML IdP certificates expiring within 30 days: ${soon.join(', ')}`);
    if (expired.length > 0) return { state: 'failed', evidence, why: `enabled SAML connections whose every IdP certificate has expired (sign-ins fail): ${expired.join(', ')}` };
    return { state: 'active', evidence };
  },
};

const clientTokenKeyCheck: TrustCheck = {
  control: 'GW-6',
  name: 'client-token-key-published',
  run: async (ctx) => {
    const signer = await ctx.signingKeys.current('client-token');
    const { keys } = await ctx.signingKeys.jwks('client-token');
    const published = keys.some((k) => k.kid === signer.kid);
    const evidence = [`the current client-token key is ${published ? '' : 'not '}in the JWKS (${keys.length} keys published)`];
    if (!published) return { state: 'failed', evidence, why: 'client tokens are signed with a key verifiers cannot find' };
    return { state: 'active', evidence };
  },
};

export const AUTH_CHECKS: readonly TrustCheck[] = [passwordsCheck, csrfCheck, socialCheck, ssoCheck, clientTokenKeyCheck];
