/**
 * OIDC for enterprise SSO: the org's IdP found by discovery, authorization code with PKCE S256,
 * a state bound to the browser by a signed short-lived cookie and spent on first use, and a nonce;
 * openid-client checks the id_token (issuer, audience, signature, nonce, times with the configured
 * skew). The client secret is opened from its sealed column only to build the client.
 */
import * as oidc from 'openid-client';
import { fetch as undiciFetch } from 'undici';
import { createPublicAddressAgent, type EgressResolver } from '../net/egress.ts';
import { AppError } from '../server/errors.ts';
import type { Kv } from '../store/kv/types.ts';
import { hashToken } from '../identity/index.ts';
import type { SsoState, StateSigner } from './state.ts';

export interface OidcConnection {
  id: string;
  issuer: string;
  clientId: string;
  scopes: readonly string[];
  /** Identifies the connection's current settings: a change builds a new client. */
  version: string;
  clientSecret: () => Promise<string>;
}

export interface OidcIdentity {
  subject: string;
  email: string | null;
  /** The IdP's email_verified claim; undefined when it sent none. */
  emailVerified: boolean | undefined;
}

/** Why a callback was refused (for the audit log) and the error it answers. */
export class OidcRefusal extends Error {
  readonly reason: string;
  readonly code: 'SSO_STATE_INVALID' | 'SSO_EXCHANGE_FAILED';
  constructor(reason: string, code: 'SSO_STATE_INVALID' | 'SSO_EXCHANGE_FAILED', detail?: string) {
    super(detail ?? reason);
    this.reason = reason;
    this.code = code;
  }
}

export const redirectUriOf = (publicOrigin: string, connectionId: string): string => `${publicOrigin}/v1/auth/sso/oidc/${connectionId}/callback`;

export function createOidcProtocol(deps: {
  kv: Kv;
  signer: StateSigner;
  publicOrigin: string;
  stateTtlMs: number;
  clockSkewSeconds: number;
  allowInsecureRequests: boolean;
  now: () => number;
  /** DNS for the issuer's host (tests); the system resolver by default. */
  resolve?: EgressResolver;
}) {
  const { kv, signer, publicOrigin, stateTtlMs, now } = deps;
  const clients = new Map<string, { version: string; client: Promise<oidc.Configuration> }>();

  // Discovery, the token endpoint and the JWKS go through an agent that refuses non-public
  // addresses after DNS: an issuer whose name resolves inside (cloud metadata, loopback, the
  // private network) is not reached. Off only with sso.allowInsecureRequests (a local test IdP).
  const agent = deps.allowInsecureRequests ? undefined : createPublicAddressAgent(deps.resolve ? { resolve: deps.resolve } : {});
  const publicFetch: oidc.CustomFetch | undefined = agent
    ? (url, options) => undiciFetch(url, { ...(options as object), dispatcher: agent }) as unknown as Promise<Response>
    : undefined;

  async function build(conn: OidcConnection): Promise<oidc.Configuration> {
    const insecure = deps.allowInsecureRequests;
    return oidc.discovery(
      new URL(conn.issuer),
      conn.clientId,
      { redirect_uris: [redirectUriOf(publicOrigin, conn.id)], ...(deps.clockSkewSeconds > 0 ? { [oidc.clockTolerance]: deps.clockSkewSeconds } : {}) },
      oidc.ClientSecretPost(await conn.clientSecret()),
      insecure ? { execute: [oidc.allowInsecureRequests] } : publicFetch ? { [oidc.customFetch]: publicFetch } : undefined,
    );
  }

  function clientOf(conn: OidcConnection): Promise<oidc.Configuration> {
    const cached = clients.get(conn.id);
    if (cached && cached.version === conn.version) return cached.client;
    const client = build(conn);
    // A failed discovery is retried on the next sign-in instead of being cached.
    client.catch(() => {
      if (clients.get(conn.id)?.client === client) clients.delete(conn.id);
    });
    clients.set(conn.id, { version: conn.version, client });
    return client;
  }

  /** The IdP's authorization URL and the state cookie that binds it to this browser. */
  async function start(conn: OidcConnection, mode: 'bearer' | 'cookie'): Promise<{ url: string; cookie: string }> {
    let client: oidc.Configuration;
    try {
      client = await clientOf(conn);
    } catch (err) {
      throw new AppError('SSO_IDP_UNAVAILABLE', undefined, { cause: err });
    }
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    const url = oidc.buildAuthorizationUrl(client, {
      redirect_uri: redirectUriOf(publicOrigin, conn.id),
      scope: conn.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      nonce,
    });
    const payload: SsoState = { c: conn.id, m: mode, e: now() + stateTtlMs, s: state, v: verifier, n: nonce };
    return { url: url.href, cookie: await signer.sign(payload) };
  }

  /**
   * The IdP sent the browser back: the state must be this browser's (cookie) and unused; then the
   * code is exchanged once and the id_token checked. Throws OidcRefusal.
   */
  async function callback(conn: OidcConnection, currentUrl: URL, cookie: string | undefined): Promise<OidcIdentity & { mode: 'bearer' | 'cookie' }> {
    let saved: SsoState;
    try {
      saved = await signer.open(cookie, conn.id);
    } catch {
      throw new OidcRefusal('state', 'SSO_STATE_INVALID');
    }
    const returned = currentUrl.searchParams.get('state') ?? '';
    if (!saved.s || !saved.v || !saved.n || returned !== saved.s) throw new OidcRefusal('state', 'SSO_STATE_INVALID');
    // Single use: the same callback replayed with its cookie is refused before any exchange.
    if (!(await kv.setIfAbsent(`sso:oidc:state:${hashToken(saved.s)}`, '1', stateTtlMs))) throw new OidcRefusal('state-replayed', 'SSO_STATE_INVALID');
    try {
      const client = await clientOf(conn);
      const tokens = await oidc.authorizationCodeGrant(client, currentUrl, { pkceCodeVerifier: saved.v, expectedState: saved.s, expectedNonce: saved.n, idTokenExpected: true });
      const claims = tokens.claims();
      if (!claims) throw new Error('no id_token');
      let source: Record<string, unknown> = claims;
      // Some IdPs put the email only in userinfo; openid-client checks that its sub matches.
      if (typeof claims.email !== 'string' && client.serverMetadata().userinfo_endpoint) {
        source = { ...(await oidc.fetchUserInfo(client, tokens.access_token, claims.sub)), sub: claims.sub };
      }
      const verified = source.email_verified;
      return {
        subject: claims.sub,
        email: typeof source.email === 'string' ? source.email : null,
        emailVerified: typeof verified === 'boolean' ? verified : undefined,
        mode: saved.m,
      };
    } catch (err) {
      throw new OidcRefusal('exchange', 'SSO_EXCHANGE_FAILED', err instanceof Error ? err.message : undefined);
    }
  }

  return { start, callback };
}

export type OidcProtocol = ReturnType<typeof createOidcProtocol>;
