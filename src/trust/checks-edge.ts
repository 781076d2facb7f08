/**
 * Live checks of the edge (EDGE-1..5, EDGE-8, OPS-2): a TLS handshake with the node's own
 * listener, real requests to itself (`app.inject`) for headers, CORS, readiness and security.txt,
 * and the route table for guards.
 */
import type { AddressInfo } from 'node:net';
import { connect, type ConnectionOptions } from 'node:tls';
import { securityHeaders } from '../server/edge/headers.ts';
import type { TrustCheck, TrustCheckContext, TrustCheckResult } from './types.ts';

const notServing = (): TrustCheckResult => ({ state: 'not verified', evidence: [], why: 'the server is not built in this process' });

/** Handshake with `options`; resolves the negotiated protocol and certificate end, or the error code. */
function handshake(options: ConnectionOptions): Promise<{ protocol: string | null; validTo?: string } | { error: string }> {
  return new Promise((resolve) => {
    const socket = connect({ ...options, rejectUnauthorized: false, timeout: 3000 }, () => {
      const cert = socket.getPeerCertificate();
      resolve({ protocol: socket.getProtocol(), ...(cert?.valid_to ? { validTo: cert.valid_to } : {}) });
      socket.end();
    });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve({ error: err.code ?? 'ERROR' }));
    socket.on('timeout', () => {
      socket.destroy();
      resolve({ error: 'TIMEOUT' });
    });
  });
}

function listenerOf(ctx: TrustCheckContext): AddressInfo | undefined {
  const address = ctx.app?.server.address();
  return address && typeof address === 'object' ? address : undefined;
}

const tlsCheck: TrustCheck = {
  control: 'EDGE-1',
  name: 'tls-handshake',
  run: async (ctx) => {
    const { certFile, minVersion } = ctx.config.tls;
    if (!certFile) return { state: 'off', evidence: ['tls.certFile is not set: this node serves plain HTTP'], why: 'TLS is off (a proxy in front may terminate it; this software cannot see that)' };
    if (!ctx.app) return notServing();
    const listener = listenerOf(ctx);
    if (!listener) return { state: 'not verified', evidence: [], why: 'the node is not listening, so no handshake could be made' };
    const host = listener.family === 'IPv6' ? '::1' : '127.0.0.1';
    const target = { host: listener.address === '0.0.0.0' || listener.address === '::' ? host : listener.address, port: listener.port, servername: 'localhost' };
    const modern = await handshake(target);
    if ('error' in modern) return { state: 'failed', evidence: [`handshake with ${target.host}:${target.port} failed (${modern.error})`], why: 'the TLS listener did not complete a handshake' };
    const evidence = [`handshake with its own listener on port ${listener.port}: ${modern.protocol ?? 'unknown'}`];
    const old = await handshake({ ...target, maxVersion: 'TLSv1.2' });
    const oldAccepted = !('error' in old);
    evidence.push(oldAccepted ? 'a TLS 1.2-only client was accepted' : 'a TLS 1.2-only client was refused');
    if (modern.validTo) {
      const days = Math.floor((Date.parse(modern.validTo) - ctx.now()) / 86_400_000);
      evidence.push(`certificate valid for ${days} more days (until ${new Date(Date.parse(modern.validTo)).toISOString()})`);
      if (days < 0) return { state: 'failed', evidence, why: 'the certificate has expired' };
    }
    if (oldAccepted && minVersion === 'TLSv1.3') return { state: 'misconfigured', evidence, why: 'TLS 1.2 is accepted although tls.minVersion is TLSv1.3' };
    if (modern.protocol !== 'TLSv1.3') return { state: 'misconfigured', evidence, why: 'a modern client did not get TLS 1.3' };
    return { state: 'active', evidence };
  },
};

/** One real request to the node itself; the response headers as lower-case names. */
async function selfRequest(ctx: TrustCheckContext, url: string, headers: Record<string, string> = {}, method: 'GET' | 'OPTIONS' = 'GET') {
  if (!ctx.app) throw new Error('no server');
  return ctx.app.inject({ method, url, headers: { 'user-agent': 'gatehouse-trust-report', ...headers } });
}

const hstsCheck: TrustCheck = {
  control: 'EDGE-1',
  name: 'hsts-header',
  run: async (ctx) => {
    if (!ctx.config.tls.certFile) return { state: 'off', evidence: ['no HSTS: TLS is off on this node'] };
    if (!ctx.app) return notServing();
    const expected = securityHeaders({ tls: true })['strict-transport-security'];
    const res = await selfRequest(ctx, '/healthz');
    const got = res.headers['strict-transport-security'];
    if (got !== expected) return { state: 'failed', evidence: [`GET /healthz: Strict-Transport-Security is ${got === undefined ? 'missing' : `"${String(got)}"`}`], why: `expected "${expected}"` };
    return { state: 'active', evidence: [`GET /healthz: Strict-Transport-Security: ${String(got)}`] };
  },
};

const headersCheck: TrustCheck = {
  control: 'EDGE-2',
  name: 'security-headers',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const expected = securityHeaders({ tls: ctx.config.tls.certFile !== undefined });
    const evidence: string[] = [];
    const wrong: string[] = [];
    for (const url of ['/healthz', '/.well-known/gatehouse-trust-check-404']) {
      const res = await selfRequest(ctx, url);
      const bad = Object.entries(expected).filter(([name, value]) => res.headers[name] !== value).map(([name]) => name);
      evidence.push(`GET ${url} (${res.statusCode}): ${Object.keys(expected).length - bad.length} of ${Object.keys(expected).length} security headers as expected`);
      wrong.push(...bad.map((name) => `${name} on ${url}`));
    }
    if (wrong.length > 0) return { state: 'failed', evidence, why: `missing or different: ${wrong.join(', ')}` };
    return { state: 'active', evidence };
  },
};

const FOREIGN_ORIGIN = 'https://trust-check.invalid';

const corsCheck: TrustCheck = {
  control: 'EDGE-3',
  name: 'cors-allowlist',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const preflight = (origin: string) => selfRequest(ctx, '/openapi.json', { origin, 'access-control-request-method': 'GET' }, 'OPTIONS');
    const foreign = await preflight(FOREIGN_ORIGIN);
    const evidence = [`preflight from an unlisted origin: ${foreign.headers['access-control-allow-origin'] === undefined ? 'no CORS headers' : 'CORS granted'}`];
    if (foreign.headers['access-control-allow-origin'] !== undefined) return { state: 'failed', evidence, why: 'an origin that is not on cors.origins was granted CORS' };
    const origins = ctx.config.cors.origins;
    if (origins.length === 0) return { state: 'active', evidence: [...evidence, 'cors.origins is empty: no cross-origin access at all'] };
    const first = new URL(origins[0] as string).origin;
    const allowed = await preflight(first);
    const granted = allowed.headers['access-control-allow-origin'] === first;
    evidence.push(`preflight from the first of ${origins.length} allowed origins: ${granted ? 'granted' : 'not granted'}`);
    if (!granted) return { state: 'misconfigured', evidence, why: 'an origin on cors.origins was not granted' };
    return { state: 'active', evidence };
  },
};

const guardsCheck: TrustCheck = {
  control: 'EDGE-5',
  name: 'route-guards',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const routes = ctx.app.gatehouse.routes;
    const verifiers = ctx.app.gatehouse.verifiers;
    const byKind = new Map<string, number>();
    const problems: string[] = [];
    for (const route of routes) {
      const kind = (route.guard as { kind?: string } | undefined)?.kind;
      if (!kind) {
        problems.push(`${route.method} ${route.url} has no guard`);
        continue;
      }
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      if (kind === 'session' && !verifiers.session) problems.push(`${route.method} ${route.url}: no session verifier`);
      if (kind === 'apiKey' && !verifiers.apiKey) problems.push(`${route.method} ${route.url}: no API-key verifier`);
      if (kind === 'webhook' && !verifiers.webhook?.[(route.guard as { provider: string }).provider]) problems.push(`${route.method} ${route.url}: no webhook verifier`);
      if (route.permission !== null && !verifiers.authorize) problems.push(`${route.method} ${route.url}: a permission without an authorizer`);
    }
    const evidence = [`${routes.length} routes in the route table: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}`];
    if (problems.length > 0) return { state: 'failed', evidence, why: problems.slice(0, 5).join('; ') };
    return { state: 'active', evidence };
  },
};

const authorizerCheck: TrustCheck = {
  control: 'TEN-1',
  name: 'permission-routes-authorized',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const withPermission = ctx.app.gatehouse.routes.filter((r) => r.permission !== null);
    const evidence = [`${withPermission.length} routes declare a permission; the role authorizer is ${ctx.app.gatehouse.verifiers.authorize ? 'installed' : 'missing'}`];
    if (withPermission.length > 0 && !ctx.app.gatehouse.verifiers.authorize) return { state: 'failed', evidence, why: 'routes that need a role would be refused for everyone or, worse, not checked' };
    return { state: 'active', evidence };
  },
};

const readinessCheck: TrustCheck = {
  control: 'OPS-2',
  name: 'readiness-and-metrics',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const res = await selfRequest(ctx, '/readyz');
    const evidence = [`GET /readyz: ${res.statusCode}`];
    const { token, open } = ctx.config.metrics;
    evidence.push(open ? '/metrics is open (no token)' : token ? '/metrics requires its bearer token' : '/metrics refuses every request (no metrics.token)');
    if (res.statusCode !== 200) return { state: 'failed', evidence, why: 'the node is not ready (a dependency does not answer)' };
    if (!open && !token) return { state: 'off', evidence, why: 'metrics are off: set metrics.token' };
    return { state: 'active', evidence };
  },
};

const securityTxtCheck: TrustCheck = {
  control: 'EDGE-8',
  name: 'security-txt',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const res = await selfRequest(ctx, '/.well-known/security.txt');
    const expires = /^Expires: (.+)$/m.exec(res.body)?.[1];
    const evidence = [`GET /.well-known/security.txt: ${res.statusCode}${expires ? `, Expires ${expires}` : ''}`];
    if (res.statusCode !== 200 || !expires) return { state: 'failed', evidence, why: 'security.txt is not served' };
    if (Date.parse(expires) <= ctx.now()) return { state: 'failed', evidence, why: 'security.txt has expired' };
    if (ctx.config.securityTxt.contact.includes('mailto:security@example.com')) return { state: 'misconfigured', evidence, why: 'securityTxt.contact is still the placeholder' };
    return { state: 'active', evidence };
  },
};

const BODY_METHODS = new Set(['POST', 'PUT', 'PATCH']);

/** A client address of TEST-NET-1 for the checks' probes, so they count against no real client's limits. */
export const probeAddress = (): string => `192.0.2.${1 + Math.floor(Math.random() * 254)}`;

/** Whether a response body is the Gatehouse error envelope with `code`. */
function envelopeCode(body: string): string | undefined {
  try {
    const parsed = JSON.parse(body) as { error?: { code?: unknown; message?: unknown } };
    return typeof parsed.error?.code === 'string' && typeof parsed.error.message === 'string' ? parsed.error.code : undefined;
  } catch {
    return undefined;
  }
}

const schemasCheck: TrustCheck = {
  control: 'EDGE-4',
  name: 'schemas-and-error-envelope',
  run: async (ctx) => {
    if (!ctx.app) return notServing();
    const routes = ctx.app.gatehouse.routes;
    const withoutBody = routes.filter((r) => BODY_METHODS.has(r.method) && !r.hasBody).map((r) => `${r.method} ${r.url}`);
    const evidence = [`${routes.length} routes; ${routes.filter((r) => BODY_METHODS.has(r.method)).length - withoutBody.length} of ${routes.filter((r) => BODY_METHODS.has(r.method)).length} that take a body declare its schema`];
    const problems = withoutBody.length > 0 ? [`no body schema: ${withoutBody.slice(0, 5).join(', ')}`] : [];
    // Real requests to itself: a body that is not JSON, and a path that does not exist.
    // A public POST of the roomiest rate category, from an address of TEST-NET-1 (RFC 5737) picked at random.
    const candidates = routes.filter((r) => r.method === 'POST' && (r.guard as { kind?: string }).kind === 'public' && !r.url.includes(':') && !r.errorFormat);
    const target = candidates.find((r) => r.rateCategory !== 'signup') ?? candidates[0];
    const probes = [
      ...(target ? [{ what: `POST ${target.url} with a body that is not JSON`, res: await ctx.app.inject({ method: 'POST', url: target.url, remoteAddress: probeAddress(), headers: { 'content-type': 'application/json', 'user-agent': 'gatehouse-trust-report' }, payload: '{"unterminated' }) }] : []),
      { what: 'GET of an unknown path', res: await selfRequest(ctx, '/v1/trust-check-unknown-path') },
    ];
    for (const { what, res } of probes) {
      const code = envelopeCode(res.body);
      evidence.push(`${what}: ${res.statusCode} ${code ?? 'not in the error envelope'}`);
      if (res.statusCode < 400 || res.statusCode >= 500 || !code) problems.push(`${what} was not refused with a 4xx in the error envelope`);
    }
    if (problems.length > 0) return { state: 'failed', evidence, why: problems.join('; ') };
    return { state: 'active', evidence };
  },
};

export const EDGE_CHECKS: readonly TrustCheck[] = [tlsCheck, hstsCheck, headersCheck, corsCheck, schemasCheck, guardsCheck, authorizerCheck, readinessCheck, securityTxtCheck];
