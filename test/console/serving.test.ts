/**
 * How a node serves the web console (UI-1), over HTTP: `/` and `/console` redirect to `/console/`,
 * the page and its files carry the console's strict CSP, client routes get the page (a deep link
 * or a reload works), a missing built file is a 404 and never the page, hashed files are cached
 * for good and sent gzip-compressed to browsers that accept it. Needs console/dist
 * (`npm ci` builds it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP } from '../../src/console/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

describe('the web console is served under /console/', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await createTestApp({ logLevel: 'silent' });
  });
  afterAll(async () => t?.close());

  it('/ and /console redirect to /console/', async () => {
    for (const url of ['/', '/console']) {
      const res = await t.app.inject({ url });
      expect(res.statusCode).toBe(302);
      expect(res.headers.location).toBe('/console/');
    }
  });

  it('the page carries the strict CSP: no inline script or style, no eval, Trusted Types required, no framing', async () => {
    const res = await t.app.inject({ url: '/console/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toBe(CONSOLE_CSP);
    for (const directive of ["default-src 'none'", "script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "require-trusted-types-for 'script'", "base-uri 'none'"]) expect(csp).toContain(directive);
    expect(csp).not.toMatch(/unsafe-|nonce-|sha256-|\*|https?:/);
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    // The page loads its script and styles as files of this node, never inline.
    expect(res.body).toMatch(/<script type="module" crossorigin src="\/console\/assets\/index-[\w-]+\.js"><\/script>/);
    expect(res.body).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(res.body).not.toMatch(/<style|style=/);
  });

  it('a client route gets the page (deep link, reload), with the same CSP', async () => {
    const page = await t.app.inject({ url: '/console/' });
    for (const url of ['/console/sign-in', '/console/me', '/console/orgs/abc/settings?tab=members']) {
      const res = await t.app.inject({ url });
      expect(res.statusCode).toBe(200);
      expect(res.body).toBe(page.body);
      expect(res.headers['content-security-policy']).toBe(CONSOLE_CSP);
    }
  });

  it('a built file is served with its type, cached for good and gzip-compressed when accepted; a missing one is a 404, never the page', async () => {
    const page = await t.app.inject({ url: '/console/' });
    const script = /src="(\/console\/assets\/[^"]+\.js)"/.exec(page.body)?.[1] ?? '';
    const plain = await t.app.inject({ url: script });
    expect(plain.statusCode).toBe(200);
    expect(plain.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(plain.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    expect(plain.headers['content-encoding']).toBeUndefined();
    const gzipped = await t.app.inject({ url: script, headers: { 'accept-encoding': 'gzip, br' } });
    expect(gzipped.headers['content-encoding']).toBe('gzip');
    expect(gzipped.rawPayload.length).toBeLessThan(plain.rawPayload.length / 2);
    const missing = await t.app.inject({ url: '/console/assets/nope-123.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: { code: 'NOT_FOUND' } });
    // The build's manifest is not served (it falls back to the page like any unknown path).
    expect((await t.app.inject({ url: '/console/.vite/manifest.json' })).body).toBe(page.body);
  });
});
