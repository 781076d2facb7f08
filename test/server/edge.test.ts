/**
 * The HTTP edge (EDGE-2..4): security headers on every response, the one error envelope, and
 * every refusal with its status and code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LightMyRequestResponse } from 'fastify';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ extraFeatures: [fixtureFeature], overrides: { 'rateLimit.enabled': false } });
});
afterAll(async () => t.close());

function expectEnvelope(res: LightMyRequestResponse, status: number, code: string): { code: string; message: string; requestId: string } {
  expect(res.statusCode).toBe(status);
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json() as { error: { code: string; message: string; requestId: string } };
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'requestId']);
  expect(body.error.code).toBe(code);
  expect(body.error.requestId).toBe(res.headers['x-request-id']);
  return body.error;
}

export function expectSecurityHeaders(res: LightMyRequestResponse): void {
  const h = res.headers;
  expect(h['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'");
  expect(h['x-frame-options']).toBe('DENY');
  expect(h['x-content-type-options']).toBe('nosniff');
  expect(h['referrer-policy']).toBe('no-referrer');
  expect(h['permissions-policy']).toContain('camera=()');
  expect(h['cross-origin-opener-policy']).toBe('same-origin');
  expect(h['cross-origin-resource-policy']).toBe('same-origin');
  expect(h['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  expect(h['x-powered-by']).toBeUndefined();
}

describe('security headers (EDGE-2)', () => {
  it('are on every declared route, on 404, 405 and on errors; no HSTS over plain HTTP', async () => {
    const responses: [string, LightMyRequestResponse][] = [];
    const call = async (method: string, url: string, extra: object = {}): Promise<void> => {
      responses.push([url, await t.app.inject({ method: method as 'GET', url, ...extra })]);
    };
    for (const route of t.app.gatehouse.routes) {
      const url = route.url.replace(':id', '00000000-0000-4000-8000-000000000000').replace('*', 'x');
      await call(route.method, url, route.hasBody ? { payload: {} } : {});
    }
    await call('GET', '/nope');
    await call('DELETE', '/healthz');
    await call('GET', '/test/boom');
    await call('POST', '/test/echo', { payload: '{bad', headers: { 'content-type': 'application/json' } });
    expect(responses.length).toBeGreaterThan(10);
    expect(new Set(responses.map(([, r]) => r.statusCode))).toEqual(new Set([200, 301, 302, 400, 401, 404, 405, 409, 500]));
    for (const [url, res] of responses) {
      if (url.startsWith('/docs')) {
        expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'self' 'nonce-[0-9a-f]{32}'/);
        expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
        expect(res.headers['x-frame-options']).toBe('DENY');
        continue;
      }
      if (url === '/passkeys') {
        // The passkeys page loads its one script from this origin: no inline script, nothing else.
        expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; script-src 'self'; connect-src 'self';/);
        expect(res.headers['content-security-policy']).not.toContain('unsafe-inline');
        expect(res.headers['x-frame-options']).toBe('DENY');
        continue;
      }
      if ((url === '/console/' || url.startsWith('/console/')) && res.statusCode === 200) {
        // The console's pages: the strict policy of src/console/csp.ts (no inline script or style, Trusted Types required).
        expect(res.headers['content-security-policy']).toBe("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; require-trusted-types-for 'script'; trusted-types 'none'");
        expect(res.headers['x-frame-options']).toBe('DENY');
        expect(res.headers['x-content-type-options']).toBe('nosniff');
        continue;
      }
      if (url.endsWith('/trust-report.html') && res.statusCode === 200) {
        // The trust report page: its one inline style allowed by hash, nothing else.
        expect(res.headers['content-security-policy']).toMatch(/^default-src 'none'; style-src 'sha256-[A-Za-z0-9+/=]+'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'$/);
        expect(res.headers['x-frame-options']).toBe('DENY');
        continue;
      }
      expectSecurityHeaders(res);
      expect(res.headers['strict-transport-security']).toBeUndefined();
    }
  });

  it('marks responses as not cacheable', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/healthz' });
    expect(res.headers['cache-control']).toBe('no-store');
  });
});

describe('refusals use the one envelope (EDGE-4)', () => {
  it('unknown route: 404 NOT_FOUND', async () => {
    expectEnvelope(await t.app.inject({ method: 'GET', url: '/v1/does-not-exist' }), 404, 'NOT_FOUND');
  });

  it('wrong method: 405 METHOD_NOT_ALLOWED with Allow', async () => {
    const res = await t.app.inject({ method: 'PUT', url: '/test/echo', payload: {} });
    expectEnvelope(res, 405, 'METHOD_NOT_ALLOWED');
    expect(res.headers.allow).toBe('POST');
    const res2 = await t.app.inject({ method: 'POST', url: '/test/items/00000000-0000-4000-8000-000000000000', payload: {} });
    expectEnvelope(res2, 405, 'METHOD_NOT_ALLOWED');
    expect(res2.headers.allow).toBe('GET, HEAD');
  });

  it('invalid JSON: 400 INVALID_JSON, and the parser message is not echoed', async () => {
    const err = expectEnvelope(
      await t.app.inject({ method: 'POST', url: '/test/echo', payload: '{"name": "a",', headers: { 'content-type': 'application/json' } }),
      400,
      'INVALID_JSON',
    );
    expect(err.message).toBe('The body is not valid JSON.');
  });

  it('unknown field: 400 VALIDATION_FAILED naming the field', async () => {
    const err = expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'a', isAdmin: true } }), 400, 'VALIDATION_FAILED');
    expect(err.message).toContain('body.isAdmin: unknown field');
  });

  it('unknown nested field: 400 naming its path', async () => {
    const err = expectEnvelope(
      await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'a', meta: { color: 'red', size: 1, role: 'owner' } } }),
      400,
      'VALIDATION_FAILED',
    );
    expect(err.message).toContain('body.meta.role: unknown field');
  });

  it('wrong type and missing field: 400 naming the field', async () => {
    const err = expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: 5 } }), 400, 'VALIDATION_FAILED');
    expect(err.message).toMatch(/^body\.name: /);
    const err2 = expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: {} }), 400, 'VALIDATION_FAILED');
    expect(err2.message).toMatch(/^body\.name: /);
  });

  it('missing body on a route that needs one: 400', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/test/echo' });
    expect(res.statusCode).toBe(400);
    expect(['VALIDATION_FAILED', 'EMPTY_JSON_BODY']).toContain(res.json().error.code);
  });

  it('empty body with a JSON content type: 400 EMPTY_JSON_BODY', async () => {
    expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: '', headers: { 'content-type': 'application/json' } }), 400, 'EMPTY_JSON_BODY');
  });

  it('invalid path parameter and unknown query field: 400 naming them', async () => {
    const err = expectEnvelope(await t.app.inject({ method: 'GET', url: '/test/items/not-a-uuid' }), 400, 'VALIDATION_FAILED');
    expect(err.message).toMatch(/^params\.id: /);
    const err2 = expectEnvelope(
      await t.app.inject({ method: 'GET', url: '/test/items/00000000-0000-4000-8000-000000000000?debug=1' }),
      400,
      'VALIDATION_FAILED',
    );
    expect(err2.message).toContain('querystring.debug: unknown field');
  });

  it('body over the default limit (1 MiB): 413 BODY_TOO_LARGE', async () => {
    const big = JSON.stringify({ name: 'a', tags: ['x'.repeat(1024 * 1024)] });
    expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: big, headers: { 'content-type': 'application/json' } }), 413, 'BODY_TOO_LARGE');
  });

  it('body over a per-route limit: 413, while the same size passes the default', async () => {
    const body = JSON.stringify({ text: 'y'.repeat(2000) });
    expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/small', payload: body, headers: { 'content-type': 'application/json' } }), 413, 'BODY_TOO_LARGE');
    const ok = await t.app.inject({ method: 'POST', url: '/test/small', payload: JSON.stringify({ text: 'y'.repeat(500) }), headers: { 'content-type': 'application/json' } });
    expect(ok.statusCode).toBe(200);
  });

  it('wrong content type: 415 UNSUPPORTED_MEDIA_TYPE (form, text, XML)', async () => {
    for (const type of ['application/x-www-form-urlencoded', 'text/plain', 'application/xml', 'multipart/form-data; boundary=x']) {
      expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: 'name=a', headers: { 'content-type': type } }), 415, 'UNSUPPORTED_MEDIA_TYPE');
    }
  });

  it('attack: a cross-site HTML form reaches only the routes that declare formBody (OAuth token and revocation, the SAML ACS): 415 on every other body route', async () => {
    const id = '00000000-0000-4000-8000-000000000000';
    const formRoutes: string[] = [];
    for (const r of t.app.gatehouse.routes.filter((x) => x.hasBody)) {
      const res = await t.app.inject({ method: r.method as 'POST', url: r.url.replace(/:([a-zA-Z]+)/g, id), payload: 'a=b', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      if (r.formBody) {
        formRoutes.push(r.url);
        expect(res.statusCode, `${r.method} ${r.url}`).not.toBe(415);
      } else expect(res.statusCode, `${r.method} ${r.url}`).toBe(415);
    }
    expect(formRoutes.sort()).toEqual(['/v1/auth/sso/saml/:connection/acs', '/v1/oauth/revoke', '/v1/oauth/token']);
  });

  it('JSON nested deeper than the limit: 400 BODY_TOO_DEEP, before parsing', async () => {
    const deep = '{"name":"a","meta":' + '['.repeat(5000) + ']'.repeat(5000) + '}';
    expectEnvelope(await t.app.inject({ method: 'POST', url: '/test/echo', payload: deep, headers: { 'content-type': 'application/json' } }), 400, 'BODY_TOO_DEEP');
    // Brackets inside strings do not count.
    const inString = JSON.stringify({ name: '['.repeat(80) });
    expect((await t.app.inject({ method: 'POST', url: '/test/echo', payload: inString, headers: { 'content-type': 'application/json' } })).statusCode).toBe(200);
  });

  it('prototype pollution through __proto__: 400 INVALID_JSON', async () => {
    const err = expectEnvelope(
      await t.app.inject({ method: 'POST', url: '/test/echo', payload: '{"name":"a","__proto__":{"isAdmin":true}}', headers: { 'content-type': 'application/json' } }),
      400,
      'INVALID_JSON',
    );
    expect(err.message).toContain('forbidden property');
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('an internal error: 500 INTERNAL with no SQL, path, stack or library text', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/boom' });
    const err = expectEnvelope(res, 500, 'INTERNAL');
    expect(err.message).toBe('Internal error.');
    expect(res.body).not.toMatch(/SELECT|password|\/srv|secret\.ts|at |stack/);
    // The log keeps what operators need, found by the request id.
    expect(t.logText()).toContain(err.requestId);
  });

  it('a response that breaks its schema: 500 INTERNAL, the bad data is not sent', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/test/bad-response' });
    expectEnvelope(res, 500, 'INTERNAL');
    expect(res.body).not.toContain('/srv/secret');
  });

  it('a feature error code: its status and code', async () => {
    expectEnvelope(await t.app.inject({ method: 'GET', url: '/test/refused' }), 409, 'FIXTURE_REFUSED');
  });

  it('a valid request passes', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: 'ok', tags: ['a'], meta: { color: 'red', size: 3 } } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ name: 'ok', tags: ['a'], meta: { color: 'red', size: 3 } });
  });
});

describe('CORS (EDGE-3)', () => {
  let c: TestApp;
  beforeAll(async () => {
    c = await createTestApp({ overrides: { 'cors.origins': ['https://app.example.com'], 'rateLimit.enabled': false } });
  });
  afterAll(async () => c.close());

  it('answers an allowed origin, including its preflight', async () => {
    const res = await c.app.inject({ method: 'GET', url: '/healthz', headers: { origin: 'https://app.example.com' } });
    expect(res.headers['access-control-allow-origin']).toBe('https://app.example.com');
    expect(res.headers.vary).toContain('Origin');
    const pre = await c.app.inject({
      method: 'OPTIONS',
      url: '/healthz',
      headers: { origin: 'https://app.example.com', 'access-control-request-method': 'GET' },
    });
    expect(pre.statusCode).toBe(204);
    expect(pre.headers['access-control-allow-origin']).toBe('https://app.example.com');
  });

  it('gives an unlisted origin (or a look-alike) no CORS headers', async () => {
    for (const origin of ['https://evil.example.com', 'https://app.example.com.evil.net', 'null', 'http://app.example.com']) {
      const res = await c.app.inject({ method: 'GET', url: '/healthz', headers: { origin } });
      expect(res.headers['access-control-allow-origin']).toBeUndefined();
      expect(res.headers['access-control-allow-credentials']).toBeUndefined();
    }
  });
});
