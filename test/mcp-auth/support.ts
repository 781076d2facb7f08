/**
 * MCP OAuth test helpers: an SDK OAuthClientProvider for a public client (the stock SDK drives
 * discovery, registration, PKCE and the token requests), the consent a member gives through the
 * API, and membership changes through the invitation flow.
 */
import type { OAuthClientProvider } from '@modelcontextprotocol/sdk/client/auth.js';
import type { OAuthClientInformationMixed, OAuthClientMetadata, OAuthTokens } from '@modelcontextprotocol/sdk/shared/auth.js';
import type { FastifyInstance } from 'fastify';
import { expect } from 'vitest';
import type { MailMessage } from '../../src/identity/mailer.ts';
import type { SignedInUser } from '../support/users.ts';

/** A public MCP client as an app would write one: it keeps what the SDK gives it and records the authorization URL. */
export class TestOAuthClient implements OAuthClientProvider {
  authorizationUrl: URL | undefined;
  private info: OAuthClientInformationMixed | undefined;
  private saved: OAuthTokens | undefined;
  private verifier = '';
  readonly redirectUrl: string;
  readonly clientMetadata: OAuthClientMetadata;

  constructor(redirectUrl = 'http://127.0.0.1:9/callback', name = 'Test MCP client') {
    this.redirectUrl = redirectUrl;
    this.clientMetadata = { client_name: name, redirect_uris: [redirectUrl], grant_types: ['authorization_code', 'refresh_token'], response_types: ['code'], token_endpoint_auth_method: 'none' };
  }

  clientInformation() {
    return this.info;
  }
  saveClientInformation(info: OAuthClientInformationMixed) {
    this.info = info;
  }
  tokens() {
    return this.saved;
  }
  saveTokens(tokens: OAuthTokens) {
    this.saved = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

/** Follows an authorization URL to the consent page: the query the page gets (or the redirect with an error). */
export async function toConsent(authorizationUrl: URL | string): Promise<{ status: number; location: string | null; query: Record<string, string> }> {
  const res = await fetch(authorizationUrl, { redirect: 'manual' });
  const location = res.headers.get('location');
  const query = location?.startsWith('/console/oauth/consent?') ? Object.fromEntries(new URLSearchParams(location.slice(location.indexOf('?') + 1))) : {};
  return { status: res.status, location, query };
}

/** A node under test: its app and the URL it listens at (the issuer: client ids are bound to it). */
export interface Served {
  app: FastifyInstance;
  url: string;
}

/** An API request to `t` as if sent to its public URL (the console's origin). */
export function injectAt(t: Served, user: SignedInUser, method: 'GET' | 'POST', url: string, payload?: object) {
  return t.app.inject({ method, url, headers: { ...user.auth, host: new URL(t.url).host }, ...(payload ? { payload } : {}) });
}

/** The member's decision through the API (as the consent page sends it): the answer. */
export async function consent(t: Served, user: SignedInUser, query: Record<string, string>, decision: 'approve' | 'deny' = 'approve') {
  return injectAt(t, user, 'POST', '/v1/oauth/consent', { query, decision });
}

/** Approves and returns the code from the redirect. */
export async function approveCode(t: Served, user: SignedInUser, authorizationUrl: URL | string): Promise<string> {
  const { query } = await toConsent(authorizationUrl);
  const res = await consent(t, user, query);
  expect(res.statusCode, res.body).toBe(200);
  const code = new URL(res.json<{ redirectTo: string }>().redirectTo).searchParams.get('code');
  if (code === null) throw new Error('no code in the redirect');
  return code;
}

/** Invites `user` into `org` with `role` and accepts. */
export async function addMember(app: FastifyInstance, mail: readonly MailMessage[], owner: SignedInUser, org: string, user: SignedInUser, role: string): Promise<void> {
  const invited = await app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, payload: { email: user.email, role }, headers: owner.auth });
  expect(invited.statusCode, invited.body).toBe(201);
  const text = [...mail].reverse().find((m) => m.to === user.email && m.kind === 'invitation')?.text ?? '';
  const invitation = /ghi_[A-Za-z0-9_-]{65}/.exec(text)?.[0];
  const accepted = await app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token: invitation }, headers: user.auth });
  expect(accepted.statusCode, accepted.body).toBe(200);
}

/** A raw token request (form-encoded). */
export async function tokenRequest(baseUrl: string, form: Record<string, string>): Promise<Response> {
  return fetch(`${baseUrl}/v1/oauth/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams(form) });
}

/** An MCP tools/list with `bearer`, as raw HTTP. */
export async function listToolsWith(baseUrl: string, ws: string, bearer: string): Promise<Response> {
  return fetch(`${baseUrl}/v1/mcp/${ws}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list', params: {} }),
  });
}
