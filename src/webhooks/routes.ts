/**
 * Routes of inbound webhooks (EDGE-6): the receiving endpoint (verified by the `webhook` guard
 * through this feature's verifier, over the raw body) and Meta's subscription handshake; the admin
 * API (org and platform) is in admin-routes.ts.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { constantTimeEqual } from '../crypto/compare.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineRoute, type Feature, type Principal } from '../server/route.ts';
import { isUuid } from '../tenancy/index.ts';
import { WEBHOOK_ERROR_CODES, webhookError } from './errors.ts';
import type { EndpointForVerify, Endpoints } from './endpoints.ts';
import type { EventStore } from './events.ts';
import { verifyWebhook, WebhookRefusal, type VerifiedEvent } from './providers.ts';
import { adminRoutes, ORG_SCOPE, PLATFORM_SCOPE } from './admin-routes.ts';
import { endpointName } from './schemas.ts';

/** The guard's provider name: one verifier serves every endpoint, whatever its provider kind. */
export const WEBHOOK_GUARD_PROVIDER = 'endpoint';

const orgParam = z.union([z.uuid(), z.literal('platform')]);
const hookParams = z.strictObject({ org: orgParam, endpoint: endpointName });

export interface WebhookRouteDeps {
  endpoints: Endpoints;
  /** The endpoint with its opened secrets, through this node's cache (endpoint-cache.ts), or null. */
  lookup: (tenantId: string, name: string) => Promise<EndpointForVerify | null>;
  events: EventStore;
  bodyLimitBytes: number;
  toleranceSeconds: number;
  perEndpointPerMinute: number;
  now: () => number;
  /** Counts a refusal by provider and reason (the error code). */
  refused: (provider: string, reason: string) => void;
  received: (provider: string) => void;
  /** Starts a relay pass (after an event was stored). */
  kick: () => void;
}

const verified = new WeakMap<FastifyRequest, { endpoint: EndpointForVerify; event: VerifiedEvent }>();

const tenantOf = (org: string | undefined): string | null => (org === 'platform' ? PLATFORM_TENANT_ID : isUuid(org) ? org : null);

/** The `webhook` guard's verifier: finds the endpoint, checks the provider's signature over the raw body. */
export function createEndpointVerifier(deps: WebhookRouteDeps) {
  return async (request: FastifyRequest): Promise<Principal | null> => {
    const params = request.params as Record<string, string | undefined>;
    const tenantId = tenantOf(params.org);
    const name = params.endpoint;
    if (tenantId === null || !name || !endpointName.safeParse(name).success) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
    const endpoint = await deps.lookup(tenantId, name);
    if (!endpoint) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
    try {
      const event = verifyWebhook(endpoint.provider, {
        raw: request.rawBody ?? Buffer.alloc(0),
        headers: request.headers,
        query: (request.query ?? {}) as Record<string, unknown>,
        body: request.body,
        secrets: endpoint.secrets,
        nowMs: deps.now(),
        toleranceSeconds: deps.toleranceSeconds,
      });
      verified.set(request, { endpoint, event });
    } catch (err) {
      if (!(err instanceof WebhookRefusal)) throw err;
      deps.refused(endpoint.provider, err.code);
      request.log.warn({ provider: endpoint.provider, endpoint: endpoint.id, code: err.code }, 'webhook refused');
      throw webhookError(err.code);
    }
    return { kind: 'webhook', id: endpoint.id, tenantId, rateLimit: { limit: deps.perEndpointPerMinute, windowSeconds: 60 } };
  };
}

export function createWebhooksFeature(deps: WebhookRouteDeps): Feature {
  const { events } = deps;
  return {
    id: 'webhooks',
    errorCodes: WEBHOOK_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'POST',
        url: '/v1/hooks/:org/:endpoint',
        summary: 'Receive a provider\'s webhook (`:org` is an org id, or `platform`). Verified over the exact body bytes; stored, acknowledged, then relayed to the endpoint\'s destination.',
        guard: { kind: 'webhook', provider: WEBHOOK_GUARD_PROVIDER },
        permission: null,
        rateCategory: 'write',
        bodyLimit: deps.bodyLimitBytes,
        rawBody: true,
        schema: { params: hookParams, body: z.unknown(), response: { 200: z.strictObject({ received: z.literal(true), id: z.string() }) } },
        handler: async ({ request }) => {
          const found = verified.get(request);
          if (!found) throw webhookError('WEBHOOK_SIGNATURE_INVALID');
          try {
            const { id } = await events.store(found.endpoint, found.event, request.rawBody ?? Buffer.alloc(0));
            deps.received(found.endpoint.provider);
            if (found.endpoint.hasDestination) deps.kick();
            return { received: true as const, id };
          } catch (err) {
            if ((err as { code?: string }).code === 'WEBHOOK_REPLAYED') deps.refused(found.endpoint.provider, 'WEBHOOK_REPLAYED');
            throw err;
          }
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/hooks/:org/:endpoint',
        summary: 'Meta (WhatsApp) subscription handshake: answers `hub.challenge` when `hub.mode` is subscribe and `hub.verify_token` is the endpoint\'s verify token.',
        guard: { kind: 'public' },
        permission: null,
        rateCategory: 'auth',
        schema: {
          params: hookParams,
          querystring: z.object({ 'hub.mode': z.string().max(50).optional(), 'hub.verify_token': z.string().max(512).optional(), 'hub.challenge': z.string().max(512).optional() }),
          response: { 200: z.string() },
        },
        handler: async ({ params, query, reply }) => {
          const endpoint = await deps.lookup(tenantOf(params.org) as string, params.endpoint);
          if (!endpoint) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
          if (endpoint.provider !== 'meta' || endpoint.verifyToken === null) throw webhookError('WEBHOOK_NOT_A_HANDSHAKE_ENDPOINT');
          const token = query['hub.verify_token'];
          const ok = query['hub.mode'] === 'subscribe' && token !== undefined && constantTimeEqual(token, endpoint.verifyToken);
          if (!ok || query['hub.challenge'] === undefined) throw webhookError('WEBHOOK_VERIFY_TOKEN_INVALID');
          return reply.type('text/plain; charset=utf-8').send(query['hub.challenge']);
        },
      }),
      ...adminRoutes(deps, ORG_SCOPE),
      ...adminRoutes(deps, PLATFORM_SCOPE),
    ],
  };
}
