/**
 * Social sign-in (AUTH-8): authorization code with PKCE S256, state bound to the browser by a
 * signed cookie, nonce for OIDC providers; openid-client does the protocol and the id_token
 * checks (issuer, audience, nonce, expiry). A provider account is linked to a Gatehouse account
 * by its stable subject. An existing account with the provider's verified email is linked only
 * after its owner confirms with their password; an unverified email never links nor creates.
 *
 * size-exception: createSocial is one factory closure (start, callback, linking) of small
 * functions over shared services; split by concern is pending (issue 17); no measured reason to
 * keep it whole.
 */
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { SOCIAL_PRESETS, type SocialProviderConfig } from '../config/social.ts';
import { constantTimeEqual } from '../crypto/compare.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Accounts, IdentityAudit, SecondFactorRequired, SignedIn } from './accounts.ts';
import { hashToken, type SessionContext } from './sessions.ts';

/** The cookie that binds a started sign-in to the browser that started it. */
export const SOCIAL_STATE_COOKIE = '__Host-gh_social';
/** How long a pending link waits for its owner's confirmation. */
export const SOCIAL_LINK_TTL_MS = 10 * 60_000;
const KEY_KV = 'social:state-key';
// Long enough for every in-flight sign-in; a new key only fails sign-ins started under the old one.
const KEY_TTL_MS = 7 * 86_400_000;

type Mode = 'bearer' | 'cookie';

/** A provider with the preset filled in. */
export interface ResolvedProvider {
  id: string;
  kind: 'oidc' | 'oauth2';
  clientId: string;
  clientSecret: string | undefined;
  issuer?: string | undefined;
  authorizationEndpoint?: string | undefined;
  tokenEndpoint?: string | undefined;
  userinfoEndpoint?: string | undefined;
  emailsEndpoint?: string | undefined;
  scopes: readonly string[];
  subjectField: string;
  emailField: string;
  verifiedField?: string | undefined;
}

/** What the provider said about the person, after the exchange. */
export interface ProviderIdentity {
  subject: string;
  email: string | null;
  emailVerified: boolean;
}

/** A pending link: the account exists, its owner must confirm. */
export interface LinkRequired {
  linkRequired: true;
  linkToken: string;
  expiresIn: number;
}

export type SocialOutcome = SignedIn | SecondFactorRequired | LinkRequired;

interface StatePayload {
  p: string;
  s: string;
  v: string;
  n?: string;
  m: Mode;
  e: number;
}

function resolveProvider(p: SocialProviderConfig, secrets: Readonly<Record<string, string>> | undefined): ResolvedProvider {
  const preset: Partial<Record<string, unknown>> = p.preset ? SOCIAL_PRESETS[p.preset] : {};
  const str = (k: string): string | undefined => (typeof preset[k] === 'string' ? (preset[k] as string) : undefined);
  const kind = p.kind ?? (str('kind') as 'oidc' | 'oauth2' | undefined) ?? 'oidc';
  const presetScopes = Array.isArray(preset.scopes) ? (preset.scopes as string[]) : undefined;
  return {
    id: p.id,
    kind,
    clientId: p.clientId,
    clientSecret: secrets?.[p.id],
    issuer: p.issuer ?? str('issuer'),
    authorizationEndpoint: p.authorizationEndpoint ?? str('authorizationEndpoint'),
    tokenEndpoint: p.tokenEndpoint ?? str('tokenEndpoint'),
    userinfoEndpoint: p.userinfoEndpoint ?? str('userinfoEndpoint'),
    emailsEndpoint: p.emailsEndpoint ?? str('emailsEndpoint'),
    scopes: p.scopes ?? presetScopes ?? (kind === 'oidc' ? ['openid', 'email'] : []),
    subjectField: p.subjectField ?? str('subjectField') ?? 'sub',
    emailField: p.emailField ?? str('emailField') ?? 'email',
    verifiedField: p.verifiedField ?? str('verifiedField') ?? (kind === 'oidc' ? 'email_verified' : undefined),
  };
}

export interface SocialDeps {
  config: Config;
  db: Db;
  kv: Kv;
  accounts: Accounts;
  logger: Logger;
  now: () => number;
  publicOrigin: string;
  audit?: IdentityAudit;
}

/** The social sign-in service. */
export function createSocial(deps: SocialDeps) {
  const { config, db, kv, accounts, logger, now, publicOrigin } = deps;
  const note: IdentityAudit = deps.audit ?? (async () => undefined);
  const providers = new Map(config.social.providers.map((p) => [p.id, resolveProvider(p, config.social.clientSecrets)]));
  const clients = new Map<string, Promise<oidc.Configuration>>();
  const stateTtlMs = config.social.stateTtlSeconds * 1000;

  function providerOf(id: string): ResolvedProvider {
    const p = providers.get(id);
    if (!p) throw new AppError('SOCIAL_PROVIDER_UNKNOWN');
    return p;
  }

  function redirectUriOf(p: ResolvedProvider): string {
    return `${publicOrigin}/v1/auth/social/${p.id}/callback`;
  }

  async function buildClient(p: ResolvedProvider): Promise<oidc.Configuration> {
    const metadata = { redirect_uris: [redirectUriOf(p)] };
    const auth = p.clientSecret ? oidc.ClientSecretPost(p.clientSecret) : oidc.None();
    const insecure = config.social.allowInsecureRequests;
    if (p.kind === 'oidc') {
      if (!p.issuer) throw new AppError('INTERNAL', `social provider ${p.id} has no issuer`);
      return oidc.discovery(new URL(p.issuer), p.clientId, metadata, auth, insecure ? { execute: [oidc.allowInsecureRequests] } : undefined);
    }
    if (!p.authorizationEndpoint || !p.tokenEndpoint || !p.userinfoEndpoint) throw new AppError('INTERNAL', `social provider ${p.id} lacks an endpoint`);
    // Plain OAuth 2 has no discovery: the issuer is only a name here (no id_token to check it against).
    const client = new oidc.Configuration(
      { issuer: new URL(p.authorizationEndpoint).origin, authorization_endpoint: p.authorizationEndpoint, token_endpoint: p.tokenEndpoint },
      p.clientId,
      metadata,
      auth,
    );
    if (insecure) oidc.allowInsecureRequests(client);
    return client;
  }

  function clientOf(p: ResolvedProvider): Promise<oidc.Configuration> {
    let client = clients.get(p.id);
    if (!client) {
      client = buildClient(p);
      // A failed discovery is retried on the next sign-in instead of being cached.
      client.catch(() => clients.delete(p.id));
      clients.set(p.id, client);
    }
    return client;
  }

  /** The HMAC key of state cookies, shared by every node through kv (created by whichever node needs it first). */
  async function stateKey(): Promise<Buffer> {
    let key = await kv.get(KEY_KV);
    if (!key) {
      await kv.setIfAbsent(KEY_KV, randomBytes(32).toString('base64url'), KEY_TTL_MS);
      key = await kv.get(KEY_KV);
    }
    if (!key) throw new AppError('INTERNAL', 'no social state key');
    return Buffer.from(key, 'base64url');
  }

  async function signState(payload: StatePayload): Promise<string> {
    const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const mac = createHmac('sha256', await stateKey()).update(body).digest('base64url');
    return `${body}.${mac}`;
  }

  async function openState(value: string | undefined, providerId: string): Promise<StatePayload> {
    const [body, mac, extra] = (value ?? '').split('.');
    if (!body || !mac || extra !== undefined) throw new AppError('SOCIAL_STATE_INVALID');
    const expected = createHmac('sha256', await stateKey()).update(body).digest('base64url');
    if (!constantTimeEqual(mac, expected)) throw new AppError('SOCIAL_STATE_INVALID');
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as StatePayload;
    if (payload.p !== providerId || payload.e <= now()) throw new AppError('SOCIAL_STATE_INVALID');
    return payload;
  }

  /** Starts a sign-in: the provider's authorization URL and the cookie value that binds it to this browser. */
  async function start(providerId: string, mode: Mode): Promise<{ url: string; cookie: string; maxAgeSeconds: number }> {
    const p = providerOf(providerId);
    const client = await clientOf(p);
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = p.kind === 'oidc' ? oidc.randomNonce() : undefined;
    const params: Record<string, string> = {
      redirect_uri: redirectUriOf(p),
      scope: p.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
      state,
      ...(nonce ? { nonce } : {}),
    };
    const cookie = await signState({ p: p.id, s: state, v: verifier, ...(nonce ? { n: nonce } : {}), m: mode, e: now() + stateTtlMs });
    return { url: oidc.buildAuthorizationUrl(client, params).href, cookie, maxAgeSeconds: Math.floor(stateTtlMs / 1000) };
  }

  async function fail(providerId: string, reason: string, err?: unknown): Promise<never> {
    await note('auth.social.failed', null, { provider: providerId, reason });
    logger.info({ event: 'social_sign_in_failed', provider: providerId, reason, err: err instanceof Error ? err.message : undefined }, 'social sign-in refused');
    throw new AppError(reason === 'email-unverified' ? 'SOCIAL_EMAIL_UNVERIFIED' : 'SOCIAL_EXCHANGE_FAILED');
  }

  async function readJson(client: oidc.Configuration, accessToken: string, url: string): Promise<unknown> {
    const res = await oidc.fetchProtectedResource(client, accessToken, new URL(url), 'GET');
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    return res.json();
  }

  async function identityOf(p: ResolvedProvider, client: oidc.Configuration, tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>): Promise<ProviderIdentity> {
    if (p.kind === 'oidc') {
      const claims = tokens.claims();
      if (!claims) throw new Error('no id_token');
      let source: Record<string, unknown> = claims;
      // Some providers put the email only in userinfo; openid-client checks that its sub matches.
      if (typeof claims[p.emailField] !== 'string' && client.serverMetadata().userinfo_endpoint) {
        source = { ...(await oidc.fetchUserInfo(client, tokens.access_token, claims.sub)), sub: claims.sub };
      }
      const email = source[p.emailField];
      return { subject: claims.sub, email: typeof email === 'string' ? email : null, emailVerified: p.verifiedField !== undefined && source[p.verifiedField] === true };
    }
    const user = (await readJson(client, tokens.access_token, p.userinfoEndpoint ?? '')) as Record<string, unknown>;
    const sub = user[p.subjectField];
    if ((typeof sub !== 'string' && typeof sub !== 'number') || String(sub).length === 0) throw new Error('userinfo has no subject');
    if (p.emailsEndpoint) {
      const list = await readJson(client, tokens.access_token, p.emailsEndpoint);
      const entries = Array.isArray(list) ? (list as Record<string, unknown>[]) : [];
      // Only the primary address, and only if the provider verified it.
      const primary = entries.find((e) => e.primary === true);
      return { subject: String(sub), email: typeof primary?.email === 'string' ? primary.email : null, emailVerified: primary?.verified === true };
    }
    const email = user[p.emailField];
    return { subject: String(sub), email: typeof email === 'string' ? email : null, emailVerified: p.verifiedField !== undefined && user[p.verifiedField] === true };
  }

  async function insertLink(userId: string, provider: string, subject: string, email: string): Promise<void> {
    await db.query('insert into social_identities (id, user_id, provider, subject, email) values ($1, $2, $3, $4, $5) on conflict (provider, subject) do nothing', [
      randomUUID(),
      userId,
      provider,
      subject,
      email,
    ]);
  }

  /**
   * The provider sent the browser back: checks the state against the cookie, exchanges the code
   * (once: the state is single use and the provider refuses a spent code), then signs in, asks to
   * confirm a link, or creates the account.
   */
  async function callback(providerId: string, currentUrl: URL, cookie: string | undefined, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }): Promise<SocialOutcome & { mode: Mode }> {
    const p = providerOf(providerId);
    const saved = await openState(cookie, p.id).catch(async (err: unknown) => {
      await note('auth.social.failed', null, { provider: p.id, reason: 'state' });
      throw err instanceof AppError ? err : new AppError('SOCIAL_STATE_INVALID');
    });
    const returned = currentUrl.searchParams.get('state') ?? '';
    if (!constantTimeEqual(returned, saved.s)) {
      await note('auth.social.failed', null, { provider: p.id, reason: 'state' });
      throw new AppError('SOCIAL_STATE_INVALID');
    }
    // Single use: the same callback replayed (with its cookie) is refused before any exchange.
    if (!(await kv.setIfAbsent(`social:state:${hashToken(saved.s)}`, '1', stateTtlMs))) {
      await note('auth.social.failed', null, { provider: p.id, reason: 'state-replayed' });
      throw new AppError('SOCIAL_STATE_INVALID');
    }
    const client = await clientOf(p);
    let identity: ProviderIdentity;
    try {
      const tokens = await oidc.authorizationCodeGrant(client, currentUrl, {
        pkceCodeVerifier: saved.v,
        expectedState: saved.s,
        ...(saved.n ? { expectedNonce: saved.n } : {}),
        idTokenExpected: p.kind === 'oidc',
      });
      identity = await identityOf(p, client, tokens);
    } catch (err) {
      return fail(p.id, 'exchange', err);
    }
    const mode = saved.m;
    const sessionCtx = { ...ctx, mode };
    const linked = (await db.query<{ user_id: string }>('select user_id from social_identities where provider = $1 and subject = $2', [p.id, identity.subject])).rows[0];
    if (linked) {
      await note('auth.social.login', linked.user_id, { provider: p.id });
      return { ...(await accounts.signInVerifiedUser(linked.user_id, sessionCtx, `social:${p.id}`)), mode };
    }
    if (!identity.email || !identity.emailVerified) return fail(p.id, 'email-unverified');
    const existing = await accounts.findUserIdByEmail(identity.email);
    if (existing) {
      const linkToken = `ghl_${randomBytes(32).toString('base64url')}`;
      await db.query(
        'insert into social_link_tokens (id, user_id, provider, subject, email, token_hash, mode, expires_at) values ($1, $2, $3, $4, $5, $6, $7, $8)',
        [randomUUID(), existing, p.id, identity.subject, identity.email, hashToken(linkToken), mode, new Date(now() + SOCIAL_LINK_TTL_MS)],
      );
      return { linkRequired: true, linkToken, expiresIn: SOCIAL_LINK_TTL_MS / 1000, mode };
    }
    const created = await accounts.createVerifiedUser(identity.email);
    // Someone signed up with this email between the lookup and the insert: no silent link either.
    if (!created) throw new AppError('SOCIAL_LINK_INVALID');
    await insertLink(created, p.id, identity.subject, identity.email);
    await note('auth.social.linked', created, { provider: p.id, created: true });
    await note('auth.social.login', created, { provider: p.id });
    return { ...(await accounts.signInVerifiedUser(created, sessionCtx, `social:${p.id}`)), mode };
  }

  /**
   * The owner of an existing account confirms a pending link with their password (a password
   * sign-in, throttled like one): the link is made and they are signed in, or asked for their
   * second factor. A wrong password leaves the pending link as it was, until it expires.
   */
  async function confirmLink(linkToken: string, password: string, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }): Promise<(SignedIn | SecondFactorRequired) & { mode: Mode }> {
    const pending = (
      await db.query<{ id: string; user_id: string; provider: string; subject: string; email: string; mode: Mode; user_email: string }>(
        `select t.id, t.user_id, t.provider, t.subject, t.email, t.mode, u.email as user_email
           from social_link_tokens t join users u on u.id = t.user_id
          where t.token_hash = $1 and t.used_at is null and t.expires_at > $2 and u.status <> 'deleted'`,
        [hashToken(linkToken), new Date(now())],
      )
    ).rows[0];
    if (!pending) throw new AppError('SOCIAL_LINK_INVALID');
    const result = await accounts.login({ email: pending.user_email, password }, { ...ctx, mode: pending.mode });
    const spent = await db.query('update social_link_tokens set used_at = $2 where id = $1 and used_at is null', [pending.id, new Date(now())]);
    if (spent.rowCount === 0) throw new AppError('SOCIAL_LINK_INVALID');
    await insertLink(pending.user_id, pending.provider, pending.subject, pending.email);
    await note('auth.social.linked', pending.user_id, { provider: pending.provider, created: false });
    return { ...result, mode: pending.mode };
  }

  /** The owner, signed in, confirms a pending link to their own account: their session proves them. */
  async function confirmLinkSignedIn(linkToken: string, userId: string): Promise<void> {
    const spent = await db.query<{ provider: string; subject: string; email: string }>(
      'update social_link_tokens set used_at = $3 where token_hash = $1 and user_id = $2 and used_at is null and expires_at > $3 returning provider, subject, email',
      [hashToken(linkToken), userId, new Date(now())],
    );
    const row = spent.rows[0];
    // Another account's pending link is as unknown as a made-up token.
    if (!row) throw new AppError('SOCIAL_LINK_INVALID');
    await insertLink(userId, row.provider, row.subject, row.email);
    await note('auth.social.linked', userId, { provider: row.provider, created: false });
  }

  return { start, callback, confirmLink, confirmLinkSignedIn };
}

export type Social = ReturnType<typeof createSocial>;
