/**
 * A real OpenID provider (`oidc-provider`) on loopback for sign-in tests: social sign-in and an
 * org's enterprise OIDC connection. The person at the provider is whoever `nextSubject` names; the
 * login and consent steps finish without HTML forms, so a test drives the flow with plain HTTP.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface IdpAccount {
  email: string;
  email_verified: boolean;
}

interface InteractionDetails {
  prompt: { name: string };
  session?: { accountId?: string };
  grantId?: string;
}
interface GrantLike {
  addOIDCScope(scope: string): void;
  save(): Promise<string>;
}
interface OidcProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: object, options: { mergeWithLastSubmission: boolean }): Promise<void>;
  Grant: { new (init: { accountId: string; clientId: string }): GrantLike; find(id: string): Promise<GrantLike | undefined> };
}
type ProviderCtor = new (issuer: string, configuration: object) => OidcProvider;

export interface TestIdp {
  /** The provider's issuer URL (http on 127.0.0.1). */
  issuer: string;
  /** The provider's accounts by subject. */
  accounts: Map<string, IdpAccount>;
  /** Who signs in at the provider next. */
  nextSubject: string;
  /** (Re)creates the provider with one confidential client; until then the server answers nothing. */
  configure(client: { clientId: string; clientSecret: string; redirectUris: string[] }): Promise<void>;
  close(): Promise<void>;
}

export async function startTestIdp(): Promise<TestIdp> {
  // oidc-provider ships no type declarations: a variable specifier keeps the import untyped, and the
  // few members used here are described by OidcProvider above.
  const specifier = 'oidc-provider';
  const { default: Provider } = (await import(specifier)) as { default: ProviderCtor };
  let provider: OidcProvider | undefined;
  let clientId = '';
  const accounts = new Map<string, IdpAccount>();

  /** The person at the provider signs in as nextSubject and consents. */
  async function finishInteraction(p: OidcProvider, req: IncomingMessage, res: ServerResponse): Promise<void> {
    const details = await p.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      await p.interactionFinished(req, res, { login: { accountId: idp.nextSubject } }, { mergeWithLastSubmission: false });
      return;
    }
    const grant = (details.grantId ? await p.Grant.find(details.grantId) : undefined) ?? new p.Grant({ accountId: details.session?.accountId ?? '', clientId });
    grant.addOIDCScope('openid email');
    await p.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
  }

  const server: Server = createServer((req, res) => {
    const p = provider;
    if (!p) return void res.end();
    if (req.url?.startsWith('/interaction/')) {
      void finishInteraction(p, req, res).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    p.callback()(req, res);
  });
  // The issuer URL needs the port, so the provider is made after the server listens.
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const idp: TestIdp = {
    issuer,
    accounts,
    nextSubject: '',
    async configure(client) {
      clientId = client.clientId;
      provider = new Provider(issuer, {
        clients: [{ client_id: client.clientId, client_secret: client.clientSecret, redirect_uris: client.redirectUris, token_endpoint_auth_method: 'client_secret_post' }],
        cookies: { keys: [randomBytes(32).toString('base64url')] },
        ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600, AuthorizationCode: 60 },
        claims: { openid: ['sub'], email: ['email', 'email_verified'] },
        features: { devInteractions: { enabled: false } },
        interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
        findAccount: async (_ctx: unknown, sub: string) => {
          const account = accounts.get(sub);
          return account ? { accountId: sub, claims: async () => ({ sub, ...account }) } : undefined;
        },
      });
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  return idp;
}

/**
 * A browser at the provider: follows redirects from `url` with the provider's cookies kept in
 * `cookies`, until one points back to `origin`; returns that URL's path and query.
 * @example const callbackPath = await followToOrigin(String(start.headers.location), ORIGIN, browser.idpCookies)
 */
export async function followToOrigin(url: string, origin: string, cookies: Map<string, string>): Promise<string> {
  let next = url;
  for (let hop = 0; hop < 10; hop++) {
    if (next.startsWith(origin)) return next.slice(origin.length);
    const res = await fetch(next, { redirect: 'manual', headers: { cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') } });
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const eq = pair?.indexOf('=') ?? -1;
      if (pair && eq > 0) cookies.set(pair.slice(0, eq), pair.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (!location) throw new Error(`the provider stopped at ${next} with ${res.status}: ${await res.text()}`);
    next = new URL(location, next).href;
  }
  throw new Error('too many redirects');
}
