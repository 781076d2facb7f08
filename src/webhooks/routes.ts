/**
 * Routes of inbound webhooks (EDGE-6): the receiving endpoint (verified by the `webhook` guard
 * through this feature's verifier, over the raw body), Meta's subscription handshake, and the
 * org admin API for endpoints, secrets, events, attempts and redelivery.
 */
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { constantTimeEqual } from '../crypto/compare.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineRoute, type Feature, type Principal, type RouteDef } from '../server/route.ts';
import { isUuid } from '../tenancy/index.ts';
import { WEBHOOK_ERROR_CODES, webhookError } from './errors.ts';
import type { EndpointForVerify, Endpoints } from './endpoints.ts';
import type { EventStore } from './events.ts';
import { PROVIDER_KINDS, verifyWebhook, WebhookRefusal, type VerifiedEvent } from './providers.ts';

/** The guard's provider name: one verifier serves every endpoint, whatever its provider kind. */
export const WEBHOOK_GUARD_PROVIDER = 'endpoint';

const endpointName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _, up to 63');
const orgParam = z.union([z.uuid(), z.literal('platform')]);
const hookParams = z.strictObject({ org: orgParam, endpoint: endpointName });
const orgOnly = z.strictObject({ org: z.uuid() });
const orgEndpoint = z.strictObject({ org: z.uuid(), endpoint: endpointName });

const endpointView = z.strictObject({ id: z.string(), name: z.string(), provider: z.enum(PROVIDER_KINDS), destinationUrl: z.string().nullable(), hasVerifyToken: z.boolean(), createdAt: z.string() });
const secretView = z.strictObject({ id: z.string(), createdAt: z.string(), expiresAt: z.string().nullable(), expired: z.boolean() });
const eventStatus = z.enum(['pending', 'delivered', 'dead', 'no_destination']);
const eventView = z.strictObject({
  id: z.string(),
  endpoint: z.string(),
  provider: z.string(),
  eventId: z.string(),
  type: z.string().nullable(),
  receivedAt: z.string(),
  status: eventStatus,
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  deliveredAt: z.string().nullable(),
});
const attemptView = z.strictObject({ attempt: z.number(), at: z.string(), statusCode: z.number().nullable(), error: z.string().nullable(), durationMs: z.number(), node: z.string() });

export interface WebhookRouteDeps {
  endpoints: Endpoints;
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
    const endpoint = await deps.endpoints.forVerify(tenantId, name);
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
  const { endpoints, events } = deps;
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
          const endpoint = await endpoints.forVerify(tenantOf(params.org) as string, params.endpoint);
          if (!endpoint) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
          if (endpoint.provider !== 'meta' || endpoint.verifyToken === null) throw webhookError('WEBHOOK_NOT_A_HANDSHAKE_ENDPOINT');
          const token = query['hub.verify_token'];
          const ok = query['hub.mode'] === 'subscribe' && token !== undefined && constantTimeEqual(token, endpoint.verifyToken);
          if (!ok || query['hub.challenge'] === undefined) throw webhookError('WEBHOOK_VERIFY_TOKEN_INVALID');
          return reply.type('text/plain; charset=utf-8').send(query['hub.challenge']);
        },
      }),
      ...endpointAdminRoutes(deps),
      ...eventAdminRoutes(deps),
    ],
  };
}

/** The org admin API of endpoints: endpoints, their provider secrets, the destination secret. */
function endpointAdminRoutes(deps: WebhookRouteDeps): RouteDef[] {
  const { endpoints } = deps;
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/webhooks/endpoints',
      summary: 'Create a webhook endpoint bound to a provider, relaying to a destination URL. Returns the destination signing secret once.',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: {
        params: orgOnly,
        body: z.strictObject({ name: endpointName, provider: z.enum(PROVIDER_KINDS), destinationUrl: z.url().max(2000).nullable().default(null), verifyToken: z.string().min(8).max(256).nullable().default(null) }),
        response: { 201: z.strictObject({ endpoint: endpointView, destinationSecret: z.string() }) },
      },
      handler: async ({ params, body, reply }) => {
        reply.code(201);
        return endpoints.create(params.org, body);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/webhooks/endpoints',
      summary: 'List the org\'s webhook endpoints (never their secrets).',
      guard: { kind: 'session' },
      permission: 'webhooks.read',
      rateCategory: 'read',
      schema: { params: orgOnly, response: { 200: z.strictObject({ endpoints: z.array(endpointView) }) } },
      handler: async ({ params }) => ({ endpoints: await endpoints.list(params.org) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/webhooks/endpoints/:endpoint',
      summary: 'Delete a webhook endpoint with its secrets, events and deliveries.',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: { params: orgEndpoint, response: { 204: z.null() } },
      handler: async ({ params, reply }) => {
        await endpoints.remove(params.org, params.endpoint);
        return reply.code(204).send(null);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/webhooks/endpoints/:endpoint/secrets',
      summary: 'Add a provider signing secret (write-only; older secrets stay valid until they expire or are removed).',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: {
        params: orgEndpoint,
        body: z.strictObject({ secret: z.string().min(8).max(512), expiresAt: z.iso.datetime().nullable().default(null) }),
        response: { 201: secretView },
      },
      handler: async ({ params, body, reply }) => {
        reply.code(201);
        return endpoints.addSecret(params.org, params.endpoint, { secret: body.secret, expiresAt: body.expiresAt === null ? null : new Date(body.expiresAt) });
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/webhooks/endpoints/:endpoint/secrets',
      summary: 'List an endpoint\'s secrets: ids and expiry, never values.',
      guard: { kind: 'session' },
      permission: 'webhooks.read',
      rateCategory: 'read',
      schema: { params: orgEndpoint, response: { 200: z.strictObject({ secrets: z.array(secretView) }) } },
      handler: async ({ params }) => ({ secrets: await endpoints.listSecrets(params.org, params.endpoint) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/webhooks/endpoints/:endpoint/secrets/:secret',
      summary: 'Remove a provider secret at once.',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: { params: orgEndpoint.extend({ secret: z.uuid() }), response: { 204: z.null() } },
      handler: async ({ params, reply }) => {
        await endpoints.removeSecret(params.org, params.endpoint, params.secret);
        return reply.code(204).send(null);
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/webhooks/endpoints/:endpoint/destination-secret',
      summary: 'Replace the destination signing secret; the new one is returned once.',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: { params: orgEndpoint, body: z.strictObject({}).nullish(), response: { 200: z.strictObject({ destinationSecret: z.string() }) } },
      handler: async ({ params }) => ({ destinationSecret: await endpoints.rotateDestinationSecret(params.org, params.endpoint) }),
    }),
  ] as RouteDef[];
}

/** The org admin API of events: received events, their attempts, redelivery. */
function eventAdminRoutes(deps: WebhookRouteDeps): RouteDef[] {
  const { events } = deps;
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/webhooks/events',
      summary: 'List received events, newest first, with their delivery state.',
      guard: { kind: 'session' },
      permission: 'webhooks.read',
      rateCategory: 'read',
      schema: {
        params: orgOnly,
        querystring: z.strictObject({ endpoint: endpointName.optional(), status: eventStatus.optional(), before: z.iso.datetime().optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
        response: { 200: z.strictObject({ events: z.array(eventView) }) },
      },
      handler: async ({ params, query }) => ({
        events: await events.list(params.org, { ...(query.endpoint ? { endpoint: query.endpoint } : {}), ...(query.status ? { status: query.status } : {}), ...(query.before ? { before: new Date(query.before) } : {}), limit: query.limit }),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/webhooks/events/:event',
      summary: 'One event with its delivery attempts.',
      guard: { kind: 'session' },
      permission: 'webhooks.read',
      rateCategory: 'read',
      schema: { params: orgOnly.extend({ event: z.uuid() }), response: { 200: z.strictObject({ event: eventView, attempts: z.array(attemptView) }) } },
      handler: async ({ params }) => events.get(params.org, params.event),
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/webhooks/events/:event/redeliver',
      summary: 'Deliver an event again now (also a dead-lettered one), with a full new round of attempts.',
      guard: { kind: 'session' },
      permission: 'webhooks.manage',
      rateCategory: 'write',
      schema: { params: orgOnly.extend({ event: z.uuid() }), body: z.strictObject({}).nullish(), response: { 200: z.strictObject({ event: eventView }) } },
      handler: async ({ params }) => {
        const event = await events.redeliver(params.org, params.event);
        deps.kick();
        return { event };
      },
    }),
  ] as RouteDef[];
}
