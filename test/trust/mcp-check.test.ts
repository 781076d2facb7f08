/**
 * GW-5 in the trust report: the live check of the MCP endpoint's authentication is active on a
 * working node and failed when the audience binding or the PKCE rule is broken.
 */
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MCP_AUTH } from '../../src/mcp-auth/index.ts';
import { TRUST } from '../../src/trust/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;

async function gw5(): Promise<{ state: string; text: string }> {
  const { report } = await t.node.use(TRUST).generate();
  const found = report.controls.find((c) => c.control === 'GW-5');
  if (!found) throw new Error('no entry for GW-5');
  return { state: found.state, text: JSON.stringify(found.checks) };
}

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
}, 120_000);
afterAll(async () => t?.close());

describe('trust report: GW-5 MCP endpoint authentication', () => {
  it('is active: 401 naming the resource metadata, S256 only, audience-bound tokens, plain PKCE refused', async () => {
    const entry = await gw5();
    expect(entry.state).toBe('active');
    expect(entry.text).toContain('an MCP request without a credential: 401, naming its resource metadata');
    expect(entry.text).toContain('at another\'s: 401 (its audience refused)');
    expect(entry.text).toContain('plain PKCE: sent back as invalid_request');
  });

  it('is failed when access tokens are no longer bound to their endpoint', async () => {
    const statements = t.node.use(MCP_AUTH).statements;
    const original = statements.readAccess;
    // The break: the audience the verifier expects is whatever the token says.
    statements.readAccess = (base, _resource, token) => original(base, (JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as { aud: string }).aud, token);
    try {
      const entry = await gw5();
      expect(entry.state).toBe('failed');
      expect(entry.text).toContain('an access token is not bound to its endpoint (audience)');
    } finally {
      statements.readAccess = original;
    }
    expect((await gw5()).state).toBe('active');
  });

  it('is failed when the authorization endpoint lets plain PKCE through', async () => {
    const original = t.app.inject.bind(t.app);
    t.app.inject = (async (opts: InjectOptions) => {
      const url = String(opts.url);
      if (url.startsWith('/v1/oauth/authorize')) return { statusCode: 302, headers: { location: '/console/oauth/consent?x=1' }, json: () => ({}) };
      return original(opts);
    }) as never;
    try {
      const entry = await gw5();
      expect(entry.state).toBe('failed');
      expect(entry.text).toContain('accepts a request without S256 PKCE');
    } finally {
      t.app.inject = original as never;
    }
  });
});
