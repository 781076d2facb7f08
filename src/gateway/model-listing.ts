/**
 * The models a provider with `*` patterns actually offers, for `GET /v1/models` (GW-2).
 *
 * A provider configured with `"models": ["gpt-4o*"]` cannot be listed from its configuration, so it
 * is asked: `GET {baseUrl}/v1/models` (OpenAI and OpenAI-compatible, `authorization: Bearer`) or
 * Anthropic's `GET /v1/models` (`x-api-key`, `anthropic-version`, paged with `after_id`). The call
 * goes through the gateway's upstream dispatcher, so the allowlist with its ports, the private-range
 * check after DNS and the loop header apply exactly as for a chat call; the vendor key is sent only
 * there and is never logged or returned (an id that contains it is dropped).
 *
 * Answers are cached per node for `gateway.modelListCacheSeconds`, keyed by the provider's id (a
 * workspace's providers carry the workspace in it), its kind, base URL and a hash of its key, so a
 * workspace never sees a list fetched with another's credentials; failures for
 * `gateway.modelListFailureCacheSeconds`. Concurrent misses share one upstream call.
 *
 * A provider that cannot be listed does not fail the answer: it is named under `unlisted` with a
 * reason (`upstream_timeout`, `upstream_error`, `upstream_auth_failed`, `upstream_rate_limited`,
 * `upstream_unavailable`, `upstream_not_allowed`, `loop_detected`, `invalid_model_list`,
 * `listing_not_supported`), and its exact names are still listed.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { Dispatcher } from 'undici';
import { z } from 'zod';
import { adapterOfKind } from './adapters/index.ts';
import { createTtlCache } from './cache.ts';
import { isGatewayError } from './errors.ts';
import { HOPS_HEADER, isLoopAnswer } from './loop.ts';
import { matchesModelPattern } from './prices.ts';
import { buildUpstreamCall } from './providers.ts';
import type { RoutableProvider } from './routing.ts';

/** Why a provider's models could not be listed: stable, lower snake case like the vendor error codes of the AI routes. */
export const UNLISTED_REASONS = [
  'upstream_timeout',
  'upstream_error',
  'upstream_auth_failed',
  'upstream_rate_limited',
  'upstream_unavailable',
  'upstream_not_allowed',
  'loop_detected',
  'invalid_model_list',
  'listing_not_supported',
] as const;
export type UnlistedReason = (typeof UNLISTED_REASONS)[number];

/** One provider's list: the ids it answered, or why there are none. */
export type ProviderListing = { ok: true; ids: readonly string[] } | { ok: false; reason: UnlistedReason };

/** Most ids kept from one provider, pages read, and bytes read of one page. */
const MAX_IDS = 10_000;
const MAX_PAGES = 10;
const MAX_PAGE_BYTES = 4 * 1024 * 1024;
/** Most providers' lists one node keeps. */
const MAX_CACHED_LISTS = 10_000;
/** A model id worth listing: printable ASCII without spaces, as long as a request's model may be. */
const MODEL_ID = /^[\x21-\x7e]{1,256}$/;

const pageSchema = z.object({
  data: z.array(z.looseObject({ id: z.string() })).max(MAX_IDS),
  has_more: z.boolean().optional(),
  last_id: z.string().nullable().optional(),
});

/** Thrown inside one listing with the reason it ends with. */
class ListingFailed extends Error {
  readonly reason: UnlistedReason;
  constructor(reason: UnlistedReason, options?: { cause?: unknown }) {
    super(reason, options);
    this.reason = reason;
  }
}

const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'ETIMEDOUT']);

function reasonOfStatus(status: number): UnlistedReason {
  if (status === 401 || status === 403) return 'upstream_auth_failed';
  if (status === 429) return 'upstream_rate_limited';
  if (status === 404 || status === 405 || status === 501) return 'listing_not_supported';
  return 'upstream_error';
}

function reasonOfError(err: unknown, timedOut: boolean): UnlistedReason {
  if (err instanceof ListingFailed) return err.reason;
  if (timedOut) return 'upstream_timeout';
  if (isGatewayError(err, 'GATEWAY_LOOP_DETECTED')) return 'loop_detected';
  if (isGatewayError(err, 'UPSTREAM_HOST_NOT_ALLOWED', 'UPSTREAM_PORT_NOT_ALLOWED', 'UPSTREAM_ADDRESS_NOT_ALLOWED', 'UPSTREAM_SCHEME_NOT_ALLOWED')) return 'upstream_not_allowed';
  const code = typeof err === 'object' && err !== null ? (err as { code?: unknown }).code : undefined;
  return typeof code === 'string' && TIMEOUT_CODES.has(code) ? 'upstream_timeout' : 'upstream_error';
}

/** True when a provider names at least one `*` pattern, so only the provider can say what it serves. */
export function hasModelPatterns(provider: RoutableProvider): boolean {
  return provider.models.some((m) => m.includes('*'));
}

/**
 * The ids of a provider's answer worth listing: well-formed, matching one of its patterns, and not
 * carrying its key (a vendor echoing it must not hand it to a tenant).
 * @example matchingIds(['gpt-4o', 'dall-e-3'], ['gpt-*'], key) // ['gpt-4o']
 */
export function matchingIds(ids: readonly string[], patterns: readonly string[], apiKey: string): string[] {
  const out = new Set<string>();
  for (const id of ids) {
    if (!MODEL_ID.test(id) || (apiKey.length > 0 && id.includes(apiKey))) continue;
    if (patterns.some((p) => matchesModelPattern(p, id))) out.add(id);
  }
  return [...out];
}

export interface ModelListerOptions {
  /** The upstream dispatcher with the egress checks: `createUpstreamAgent(...)`. */
  dispatcher: Dispatcher;
  logger: Logger;
  cacheTtlMs: number;
  failureTtlMs: number;
  timeoutMs: number;
  /** True when the provider's circuit breaker is open: it is not asked then. */
  breakerOpen: (providerId: string) => boolean;
  now?: () => number;
}

export interface ModelLister {
  /**
   * What each provider with patterns offers, filtered by its patterns, and which could not be listed.
   * @example const { ids, unlisted } = await lister.list(providers, hops)
   */
  list(providers: readonly RoutableProvider[], hops: readonly string[]): Promise<{ ids: Map<RoutableProvider, readonly string[]>; unlisted: { provider: string; reason: UnlistedReason }[] }>;
  /** Forgets every cached list. */
  clear(): void;
}

/** Creates the lister: one per node, sharing the upstream dispatcher. */
export function createModelLister(options: ModelListerOptions): ModelLister {
  const cache = createTtlCache<ProviderListing>({
    ttlMs: options.cacheTtlMs,
    maxEntries: MAX_CACHED_LISTS,
    ...(options.now ? { now: options.now } : {}),
    ttlOf: (listing) => (listing.ok ? options.cacheTtlMs : options.failureTtlMs),
  });

  /** The cache key: a changed base URL, kind, version or key is another provider. */
  function cacheKeyOf(provider: RoutableProvider): string {
    const { id, kind, baseUrl, apiVersion } = provider.config;
    const secret = createHash('sha256').update(provider.apiKey).digest('base64url');
    return JSON.stringify([id, kind, baseUrl, apiVersion ?? null, secret]);
  }

  /** One page's JSON, or a ListingFailed. */
  async function fetchPage(provider: RoutableProvider, afterId: string | null, hops: readonly string[], signal: AbortSignal): Promise<z.infer<typeof pageSchema>> {
    const call = buildUpstreamCall({ provider: provider.config, apiKey: provider.apiKey, model: '', path: '/v1/models', method: 'GET', body: undefined, stream: false });
    const query = adapterOfKind(provider.config.kind).modelsQuery(afterId);
    const response = await options.dispatcher.request({
      origin: call.origin,
      path: `${call.path}${query}`,
      method: 'GET',
      headers: hops.length > 0 ? { ...call.headers, [HOPS_HEADER]: hops.join(',') } : call.headers,
      signal,
      headersTimeout: options.timeoutMs + 1_000,
      bodyTimeout: options.timeoutMs + 1_000,
    });
    const body = response.body;
    if (isLoopAnswer(response.headers)) {
      await body.dump().catch(() => undefined);
      throw new ListingFailed('loop_detected');
    }
    if (response.statusCode !== 200) {
      await body.dump().catch(() => undefined);
      throw new ListingFailed(reasonOfStatus(response.statusCode));
    }
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of body as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_PAGE_BYTES) {
        body.destroy();
        throw new ListingFailed('invalid_model_list');
      }
      chunks.push(chunk);
    }
    let json: unknown;
    try {
      json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new ListingFailed('invalid_model_list');
    }
    const page = pageSchema.safeParse(json);
    if (!page.success) throw new ListingFailed('invalid_model_list');
    return page.data;
  }

  /** Asks the provider, page by page, within one deadline. */
  async function fetchListing(provider: RoutableProvider, hops: readonly string[]): Promise<ProviderListing> {
    if (provider.config.kind === 'azure-openai') return { ok: false, reason: 'listing_not_supported' };
    if (options.breakerOpen(provider.config.id)) return { ok: false, reason: 'upstream_unavailable' };
    const controller = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, options.timeoutMs);
    try {
      const ids: string[] = [];
      const adapter = adapterOfKind(provider.config.kind);
      let afterId: string | null = null;
      for (let pageNumber = 0; pageNumber < MAX_PAGES && ids.length < MAX_IDS; pageNumber++) {
        const page = await fetchPage(provider, afterId, hops, controller.signal);
        for (const entry of page.data) ids.push(entry.id);
        afterId = adapter.nextModelsCursor(page);
        if (afterId === null) break;
      }
      return { ok: true, ids: ids.slice(0, MAX_IDS) };
    } catch (err) {
      const reason = reasonOfError(err, timedOut);
      // The provider's label and a code only: an upstream error never carries the key, but nothing is risked.
      options.logger.warn({ provider: provider.label, reason, code: (err as { code?: unknown } | null)?.code }, 'could not list a provider\'s models');
      return { ok: false, reason };
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    async list(providers, hops) {
      const ids = new Map<RoutableProvider, readonly string[]>();
      const unlisted: { provider: string; reason: UnlistedReason }[] = [];
      const listings = await Promise.all(
        providers.filter(hasModelPatterns).map(async (p) => [p, await cache.load(cacheKeyOf(p), () => fetchListing(p, hops))] as const),
      );
      for (const [provider, listing] of listings) {
        if (listing.ok) ids.set(provider, matchingIds(listing.ids, provider.models, provider.apiKey));
        else unlisted.push({ provider: provider.label, reason: listing.reason });
      }
      return { ids, unlisted };
    },
    clear: () => cache.clear(),
  };
}
