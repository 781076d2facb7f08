/**
 * URL fields refuse what the URL parser refuses (issue: a provider baseUrl such as
 * `https://exa mple.com` passed the schema's `uri` format check and then threw in a refinement,
 * answering 500). Every route that takes a URL is tried with every input: each answers 400
 * VALIDATION_FAILED and stores nothing.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgAndWorkspace, expectStatus, startGatewayApp, VENDOR_KEYS, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

/** Inputs the WHATWG parser refuses, or would silently rewrite, with what each attack tries. */
const BAD_URLS: readonly [string, string][] = [
  ['a space inside the host', 'https://exa mple.com'],
  ['a port above 65535', 'https://example.com:70000'],
  ['an unclosed IPv6 bracket', 'https://[::1'],
  ['a malformed percent escape in the host', 'https://ex%zzample.com'],
  ['a malformed percent escape in the path', 'https://example.com/%zz'],
  ['a tab the parser would strip', 'https://exa\tmple.com'],
];

let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;

beforeAll(async () => {
  t = await startGatewayApp();
  owner = await signUpUser(t.app, t.mail, 'url-fields@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'URL fields'));
});

afterAll(async () => {
  await t?.close();
});

/** Every route that takes a URL: a request with `url` in its URL field. */
const ROUTES: readonly { name: string; send: (url: string) => Promise<LightMyRequestResponse>; stored: () => Promise<number> }[] = [
  {
    name: 'PUT a workspace provider (baseUrl)',
    send: (url) =>
      t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/providers/p1`, headers: owner.auth, payload: { kind: 'openai', baseUrl: url, apiKey: VENDOR_KEYS.openai, models: ['m'] } }),
    stored: async () => (await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select count(*)::int as n from provider_credentials'))).rows[0]?.n ?? -1,
  },
  {
    name: 'POST an OIDC SSO connection (issuer)',
    send: (url) =>
      t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/sso/connections`, headers: owner.auth, payload: { kind: 'oidc', name: 'IdP', defaultRole: 'viewer', issuer: url, clientId: 'c', clientSecret: 's' } }),
    stored: async () => (await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select count(*)::int as n from sso_connections'))).rows[0]?.n ?? -1,
  },
];

describe('URL fields answer 400 for URLs the parser refuses, never 500', () => {
  for (const route of ROUTES) {
    for (const [attack, url] of BAD_URLS) {
      it(`attack: ${attack} (${JSON.stringify(url)}) on ${route.name} — 400 VALIDATION_FAILED, nothing stored`, async () => {
        const before = await route.stored();
        const res = await route.send(url);
        expect(res.statusCode, res.body).toBe(400);
        expect(res.json<{ error: { code: string } }>().error.code).toBe('VALIDATION_FAILED');
        expect(await route.stored()).toBe(before);
      });
    }
  }

  it('the same routes still take a well-formed URL (the refusals above are about the URL)', async () => {
    const provider = await ROUTES[0]?.send(t.vendor.url);
    if (!provider) throw new Error('no route');
    expectStatus(provider, 200);
  });
});
