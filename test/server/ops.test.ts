/** OPS-2 and EDGE-8: health, readiness, metrics, security.txt, the policy, OpenAPI and /docs. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';

const START = Date.parse('2026-11-22T10:00:00.000Z');
let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    now: () => START,
    env: {
      GATEHOUSE_METRICS_TOKEN: 'metrics-token-0123456789abcdef',
      GATEHOUSE_SECURITY_TXT_CONTACT: 'mailto:security@acme.test,https://acme.test/security',
      GATEHOUSE_SERVER_PUBLIC_URL: 'https://gate.acme.test',
    },
  });
});
afterAll(async () => t.close());

describe('health and readiness', () => {
  it('/healthz answers ok', async () => {
    const res = await t.app.inject({ url: '/healthz' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('/readyz checks storage and kv', async () => {
    const res = await t.app.inject({ url: '/readyz' });
    expect(res.json()).toEqual({ status: 'ready', checks: { storage: 'ok', kv: 'ok' }, unavailable: [] });
  });

  it('/readyz answers 503 naming the failing dependency, without its error text', async () => {
    const original = t.node.kv.ping;
    t.node.kv.ping = async () => {
      throw new Error('NOAUTH redis://:hunter2@10.0.0.1');
    };
    try {
      const res = await t.app.inject({ url: '/readyz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ status: 'not_ready', checks: { storage: 'ok', kv: 'unavailable' }, unavailable: ['memory'] });
      expect(res.body).not.toContain('hunter2');
    } finally {
      t.node.kv.ping = original;
    }
  });
});

describe('metrics', () => {
  it('serves Prometheus text with request counters and latency histograms by route pattern', async () => {
    await t.app.inject({ url: '/healthz' });
    const res = await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456789abcdef' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/plain');
    expect(res.body).toMatch(/gatehouse_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
    expect(res.body).toContain('gatehouse_http_request_duration_seconds_bucket');
    expect(res.body).toContain('gatehouse_rate_limit_hits_total');
  });
});

describe('security.txt (RFC 9116)', () => {
  it('lists Contact, an Expires computed from config, Policy, Canonical and Preferred-Languages', async () => {
    const res = await t.app.inject({ url: '/.well-known/security.txt' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/plain; charset=utf-8');
    const lines = res.body.trim().split('\n');
    expect(lines).toContain('Contact: mailto:security@acme.test');
    expect(lines).toContain('Contact: https://acme.test/security');
    // Default expiresDays is 180, counted from the injected start time.
    expect(lines).toContain('Expires: 2027-05-21T10:00:00Z');
    expect(lines).toContain('Policy: https://gate.acme.test/security-policy');
    expect(lines).toContain('Canonical: https://gate.acme.test/.well-known/security.txt');
    expect(lines).toContain('Preferred-Languages: en');
    // Every line is a field the RFC defines.
    for (const line of lines) expect(line).toMatch(/^(Contact|Expires|Policy|Canonical|Preferred-Languages): \S/);
  });

  it('serves the disclosure policy it points to', async () => {
    const res = await t.app.inject({ url: '/security-policy' });
    expect(res.statusCode).toBe(200);
    expect(res.body).toContain('# Security policy');
  });
});

describe('OpenAPI and the reference UI', () => {
  it('/openapi.json documents every declared route with its guard', async () => {
    const doc = (await t.app.inject({ url: '/openapi.json' })).json() as {
      openapi: string;
      paths: Record<string, Record<string, { description?: string; security?: unknown[] }>>;
    };
    expect(doc.openapi).toBe('3.1.0');
    // The UIs (the reference at /docs, the console at /console/) are pages, not API operations.
    for (const route of t.app.gatehouse.routes.filter((r) => r.feature !== 'docs' && r.feature !== 'console')) {
      const path = route.url.replace(/:([a-zA-Z]+)/g, '{$1}');
      const op = doc.paths[path]?.[route.method.toLowerCase()];
      expect(op, `${route.method} ${route.url}`).toBeDefined();
      expect(op?.description).toMatch(/^Guard: /);
    }
    expect(doc.paths['/metrics']?.get?.security).toEqual([{ metricsToken: [] }]);
    expect(doc.paths['/metrics']?.get?.description).toContain('Guard: metrics token');
  });

  it('/docs/ serves the reference UI under a nonce CSP', async () => {
    const res = await t.app.inject({ url: '/docs/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toContain('text/html');
    const nonce = /'nonce-([0-9a-f]{32})'/.exec(res.headers['content-security-policy'] as string)?.[1];
    expect(nonce).toBeDefined();
    expect(res.body).toContain(`nonce="${nonce}"`);
    expect(res.body).toContain('/openapi.json');
    const js = await t.app.inject({ url: '/docs/js/scalar.js' });
    expect(js.statusCode).toBe(200);
  });

  it('a nonce per response: two pages carry different nonces, each the one its header names', async () => {
    const pages = await Promise.all([t.app.inject({ url: '/docs/' }), t.app.inject({ url: '/docs/' }), t.app.inject({ url: '/docs' })]);
    const nonces = pages.filter((p) => p.statusCode === 200).map((page) => {
      const csp = page.headers['content-security-policy'] as string;
      const inHeader = [...csp.matchAll(/'nonce-([^']+)'/g)].map((m) => m[1]);
      const inPage = [...page.body.matchAll(/nonce="([^"]+)"|property="csp-nonce" content="([^"]+)"/g)].map((m) => m[1] ?? m[2]);
      // script-src and style-src(-elem) name one nonce; every nonce in the page is that one.
      expect(new Set(inHeader).size).toBe(1);
      expect(inPage.length).toBeGreaterThanOrEqual(3);
      expect(new Set(inPage)).toEqual(new Set(inHeader));
      return inHeader[0];
    });
    expect(nonces).toHaveLength(2);
    expect(nonces[0]).toMatch(/^[0-9a-f]{32}$/);
    expect(nonces[0]).not.toBe(nonces[1]);
  });

  it('the UI script that runs before the bundle is served from this server, and /favicon.ico is an icon', async () => {
    const shim = await t.app.inject({ url: '/docs/js/csp.js' });
    expect(shim.statusCode).toBe(200);
    expect(shim.headers['content-type']).toBe('application/javascript; charset=utf-8');
    expect(shim.body).toContain('jitless');
    const icon = await t.app.inject({ url: '/favicon.ico' });
    expect(icon.statusCode).toBe(200);
    expect(icon.headers['content-type']).toBe('image/x-icon');
    expect(icon.headers['cache-control']).toBe('public, max-age=86400');
    expect(icon.headers['x-content-type-options']).toBe('nosniff');
    // An ICO header: reserved 0, type 1 (icon), one image.
    expect([...icon.rawPayload.subarray(0, 6)]).toEqual([0, 0, 1, 0, 1, 0]);
  });
});

describe('JWKS', () => {
  it('publishes the current and next Ed25519 keys of both purposes (access tokens, audit checkpoints) and of gateway client tokens, and no private material', async () => {
    const res = await t.app.inject({ url: '/.well-known/jwks.json' });
    expect(res.statusCode).toBe(200);
    const { keys } = res.json() as { keys: { kid: string; kty: string; crv: string; x: string; d?: string }[] };
    const listed = await t.node.signingKeys.list();
    const published = listed.filter((k) => k.state === 'current' || k.state === 'next').map((k) => k.kid);
    expect(published).toHaveLength(6);
    expect(keys.map((k) => k.kid).sort()).toEqual(published.sort());
    for (const k of keys) {
      expect(k).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
      expect(k.d).toBeUndefined();
    }
    expect(res.body).not.toMatch(/"d"\s*:/);
  });
});
