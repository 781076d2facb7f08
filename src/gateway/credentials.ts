/**
 * Credentials derived from an API key (GW-6): other features (src/tokens) teach the gateway's
 * apiKey verifier to accept credentials of their own shape through the `API_CREDENTIAL_VERIFIERS`
 * hook point (src/gateway/index.ts). Such a verifier checks its credential offline (signature,
 * audience, expiry, origin) and names the API key it was derived from; the gateway then reads that
 * parent key through the same per-node cache the API keys use, so a revoked or expired parent (and
 * its eviction on every node) refuses every credential derived from it at once. Scopes are the
 * intersection of the credential's and the parent's current ones; models and subject restrict the
 * call further.
 */
import type { FastifyRequest } from 'fastify';
import { publicOriginOf, type Config } from '../config/schema.ts';
import { matchesModelPattern } from './prices.ts';

/** What a derived credential grants, as its verifier read it. */
export interface DelegatedCredential {
  /** The API key the credential was minted from. */
  parentKeyId: string;
  tenantId: string;
  workspaceId: string;
  /** At most these scopes (intersected with the parent key's current scopes). */
  scopes: readonly string[];
  /** Model names or `*` patterns the credential may call; null: whatever the parent may. */
  models: readonly string[] | null;
  /** The end user or bot the credential was minted for; rate limits and usage are kept per subject. */
  subject: string | null;
  /** The credential's own id (a JWT's jti): its rate limit window when it names no subject. */
  credentialId: string;
  /** The credential's own limit per minute; null: the parent key's. */
  rateLimitPerMinute: number | null;
  /** Calls per UTC month for its subject, counted besides the parent key's own monthly limit; null: none. */
  monthlyCallLimit: number | null;
}

/**
 * A verifier of one kind of derived credential. `undefined`: not this verifier's shape (the next one
 * is asked); `null`: this verifier's shape, refused (401). It may throw an `AppError` for a more
 * precise refusal (an expired token, a wrong origin), and must throw, never return null, when a
 * dependency could not answer.
 */
export interface ApiCredentialVerifier {
  verify(presented: string, request: FastifyRequest): Promise<DelegatedCredential | null | undefined>;
}

/** Whether `model` is one the credential may call. */
export function credentialAllowsModel(credential: Pick<DelegatedCredential, 'models'> | undefined, model: string): boolean {
  if (!credential || credential.models === null) return true;
  return credential.models.some((pattern) => matchesModelPattern(pattern, model));
}

/**
 * The browser origins an API key itself may be used from: `cors.origins` and the public origin,
 * read per call from the (live) configuration and parsed again only when it changed.
 */
export function browserOriginsOf(current: () => Config): () => ReadonlySet<string> {
  let seen: Config | undefined;
  let origins: ReadonlySet<string> = new Set();
  return () => {
    const config = current();
    if (config !== seen) {
      seen = config;
      origins = new Set([publicOriginOf(config), ...config.cors.origins.map((o) => new URL(o).origin)]);
    }
    return origins;
  };
}
