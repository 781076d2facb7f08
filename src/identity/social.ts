/**
 * Social sign-in (AUTH-8): authorization code with PKCE S256, state bound to the browser by a
 * signed cookie, nonce for OIDC providers; openid-client does the protocol and the id_token
 * checks (issuer, audience, nonce, expiry). A provider account is linked to a Gatehouse account
 * by its stable subject. An existing account with the provider's verified email is linked only
 * after its owner confirms with their password; an unverified email never links nor creates.
 *
 * The parts: social-providers.ts (providers and their clients), social-state.ts (the signed state
 * cookie), social-links.ts (links and their confirmation).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import * as oidc from 'openid-client';
import type { Logger } from 'pino';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import { constantTimeEqual } from '../crypto/compare.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Accounts, IdentityAudit, SecondFactorRequired, SignedIn } from './accounts.ts';
import { hashToken, type SessionContext } from './sessions.ts';
import { createSocialLinks } from './social-links.ts';
import { createSocialProviders, identityOf, type ProviderIdentity } from './social-providers.ts';
import { createSocialState, type SocialMode as Mode } from './social-state.ts';

export type { ProviderIdentity, ResolvedProvider } from './social-providers.ts';

/** The cookie that binds a started sign-in to the browser that started it. */
export const SOCIAL_STATE_COOKIE = '__Host-gh_social';
/** How long a pending link waits for its owner's confirmation. */
export const SOCIAL_LINK_TTL_MS = 10 * 60_000;

/** A pending link: the account exists, its owner must confirm. */
export interface LinkRequired {
  linkRequired: true;
  linkToken: string;
  expiresIn: number;
}

export type SocialOutcome = SignedIn | SecondFactorRequired | LinkRequired;

export interface SocialDeps {
  config: Config;
  /** The live configuration: the social section (providers, client secrets) reloads from it. */
  live?: LiveConfig;
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
  const { providerOf, redirectUriOf, clientOf } = createSocialProviders(() => deps.live?.current() ?? config, publicOrigin);
  const { signState, openState } = createSocialState({ kv, now });
  const { insertLink, confirmLink, confirmLinkSignedIn } = createSocialLinks({ db, accounts, now, note });
  const stateTtlMs = config.social.stateTtlSeconds * 1000;

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

  return { start, callback, confirmLink, confirmLinkSignedIn };
}

export type Social = ReturnType<typeof createSocial>;