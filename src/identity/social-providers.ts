/**
 * Social sign-in providers (AUTH-8, see social.ts): a configured provider with its preset filled
 * in, its openid-client configuration (discovered once per node, retried after a failure), and
 * what the provider says about the person after the code exchange.
 */
import * as oidc from 'openid-client';
import type { Config } from '../config/schema.ts';
import { SOCIAL_PRESETS, type SocialProviderConfig } from '../config/social.ts';
import { AppError } from '../server/errors.ts';

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

/** The configured providers, and their clients built on first use. */
export function createSocialProviders(
  configNow: () => Config,
  publicOrigin: string,
): {
  providerOf(id: string): ResolvedProvider;
  redirectUriOf(p: ResolvedProvider): string;
  clientOf(p: ResolvedProvider): Promise<oidc.Configuration>;
} {
  // The social section reloads without a restart (providers, client secrets): when it changes, the
  // providers are resolved again and their clients built anew on first use; a sign-in under way
  // keeps the provider it resolved.
  type Built = { social: Config['social']; key: string; providers: Map<string, ResolvedProvider>; clients: Map<string, Promise<oidc.Configuration>> };
  const build = (social: Config['social']): Built => ({ social, key: JSON.stringify(social), providers: new Map(social.providers.map((p) => [p.id, resolveProvider(p, social.clientSecrets)])), clients: new Map() });
  let built = build(configNow().social);
  const current = (): Built => {
    const social = configNow().social;
    if (social !== built.social) {
      const key = JSON.stringify(social);
      built = key === built.key ? { ...built, social } : build(social);
    }
    return built;
  };

  function providerOf(id: string): ResolvedProvider {
    const p = current().providers.get(id);
    if (!p) throw new AppError('SOCIAL_PROVIDER_UNKNOWN');
    return p;
  }

  function redirectUriOf(p: ResolvedProvider): string {
    return `${publicOrigin}/v1/auth/social/${p.id}/callback`;
  }

  async function buildClient(p: ResolvedProvider): Promise<oidc.Configuration> {
    const metadata = { redirect_uris: [redirectUriOf(p)] };
    const auth = p.clientSecret ? oidc.ClientSecretPost(p.clientSecret) : oidc.None();
    const insecure = configNow().social.allowInsecureRequests;
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
    const { clients, providers } = current();
    // A sign-in that resolved its provider before a reload finishes with it, uncached.
    if (providers.get(p.id) !== p) return buildClient(p);
    let client = clients.get(p.id);
    if (!client) {
      client = buildClient(p);
      // A failed discovery is retried on the next sign-in instead of being cached.
      client.catch(() => clients.delete(p.id));
      clients.set(p.id, client);
    }
    return client;
  }

  return { providerOf, redirectUriOf, clientOf };
}

async function readJson(client: oidc.Configuration, accessToken: string, url: string): Promise<unknown> {
  const res = await oidc.fetchProtectedResource(client, accessToken, new URL(url), 'GET');
  if (!res.ok) throw new Error(`${url} answered ${res.status}`);
  return res.json();
}

export async function identityOf(p: ResolvedProvider, client: oidc.Configuration, tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>): Promise<ProviderIdentity> {
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
