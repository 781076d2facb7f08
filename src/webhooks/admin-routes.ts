/**
 * The admin API of inbound webhooks (EDGE-6), in two scopes with the same shapes: an org's
 * (`/v1/orgs/:org/webhooks/...`, org roles `webhooks.read` / `webhooks.manage`) and the
 * platform's (`/v1/admin/webhooks/...`, operators only: `platform.webhooks.read` /
 * `platform.webhooks.manage`). Endpoints, their provider secrets and destination secret, received
 * events, their attempts and redelivery. Every change is audited in the scope's log (the org's, or
 * the platform's), by the store functions, in the change's transaction.
 */
import { z } from 'zod';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';
import type { Endpoints } from './endpoints.ts';
import type { EventStore } from './events.ts';
import { PROVIDER_KINDS } from './providers.ts';
import { attemptView, endpointName, endpointView, eventStatus, eventView, secretView } from './schemas.ts';

export interface AdminScope {
  /** The URL prefix of the scope's routes. */
  base: string;
  /** The path parameters of the prefix. */
  params: z.ZodRawShape;
  /** The tenant the routes act on, from the validated parameters. */
  tenant: (params: Record<string, unknown>) => string;
  read: string;
  manage: string;
  /** Whose endpoints, for the summaries. */
  whose: string;
}

export const ORG_SCOPE: AdminScope = {
  base: '/v1/orgs/:org/webhooks',
  params: { org: z.uuid() },
  tenant: (p) => p.org as string,
  read: 'webhooks.read',
  manage: 'webhooks.manage',
  whose: 'the org\'s',
};

export const PLATFORM_SCOPE: AdminScope = {
  base: '/v1/admin/webhooks',
  params: {},
  tenant: () => PLATFORM_TENANT_ID,
  read: 'platform.webhooks.read',
  manage: 'platform.webhooks.manage',
  whose: 'Operators: the platform\'s',
};

export interface AdminRouteDeps {
  endpoints: Endpoints;
  events: EventStore;
  /** Starts a relay pass (after a redelivery was queued). */
  kick: () => void;
}

const destinationUrl = z.url().max(2000).nullable();
const verifyToken = z.string().min(8).max(256).nullable();

/** Both parts of the admin API for one scope. */
export function adminRoutes(deps: AdminRouteDeps, scope: AdminScope): RouteDef[] {
  return [...endpointRoutes(deps, scope), ...eventRoutes(deps, scope)];
}

/** Endpoints, their provider secrets, the destination secret. */
function endpointRoutes(deps: AdminRouteDeps, scope: AdminScope): RouteDef[] {
  const { endpoints } = deps;
  const { base, tenant, read, manage, whose } = scope;
  const only = z.strictObject(scope.params);
  const one = z.strictObject({ ...scope.params, endpoint: endpointName });
  return [
    defineRoute({
      method: 'POST',
      url: `${base}/endpoints`,
      summary: `Create one of ${whose} webhook endpoints, bound to a provider, relaying to a destination URL. Returns the destination signing secret once.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: {
        params: only,
        body: z.strictObject({ name: endpointName, provider: z.enum(PROVIDER_KINDS), destinationUrl: destinationUrl.default(null), verifyToken: verifyToken.default(null) }),
        response: { 201: z.strictObject({ endpoint: endpointView, destinationSecret: z.string() }) },
      },
      handler: async ({ params, body, reply }) => {
        reply.code(201);
        return endpoints.create(tenant(params), body);
      },
    }),
    defineRoute({
      method: 'GET',
      url: `${base}/endpoints`,
      summary: `List ${whose} webhook endpoints (never their secrets).`,
      guard: { kind: 'session' },
      permission: read,
      rateCategory: 'read',
      schema: { params: only, response: { 200: z.strictObject({ endpoints: z.array(endpointView) }) } },
      handler: async ({ params }) => ({ endpoints: await endpoints.list(tenant(params)) }),
    }),
    defineRoute({
      method: 'PATCH',
      url: `${base}/endpoints/:endpoint`,
      summary: `Change one of ${whose} endpoints: its destination URL (null: events are stored, not relayed) or its Meta verify token.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: {
        params: one,
        body: z.strictObject({ destinationUrl: destinationUrl.optional(), verifyToken: verifyToken.optional() }).refine((b) => b.destinationUrl !== undefined || b.verifyToken !== undefined, 'nothing to change'),
        response: { 200: z.strictObject({ endpoint: endpointView }) },
      },
      handler: async ({ params, body }) => ({ endpoint: await endpoints.update(tenant(params), params.endpoint, body) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: `${base}/endpoints/:endpoint`,
      summary: `Delete one of ${whose} webhook endpoints with its secrets, events and deliveries.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: { params: one, response: { 204: z.null() } },
      handler: async ({ params, reply }) => {
        await endpoints.remove(tenant(params), params.endpoint);
        return reply.code(204).send(null);
      },
    }),
    defineRoute({
      method: 'POST',
      url: `${base}/endpoints/:endpoint/secrets`,
      summary: `Add a provider signing secret to one of ${whose} endpoints (write-only; older secrets stay valid until they expire or are removed).`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: {
        params: one,
        body: z.strictObject({ secret: z.string().min(8).max(512), expiresAt: z.iso.datetime().nullable().default(null) }),
        response: { 201: secretView },
      },
      handler: async ({ params, body, reply }) => {
        reply.code(201);
        return endpoints.addSecret(tenant(params), params.endpoint, { secret: body.secret, expiresAt: body.expiresAt === null ? null : new Date(body.expiresAt) });
      },
    }),
    defineRoute({
      method: 'GET',
      url: `${base}/endpoints/:endpoint/secrets`,
      summary: `List the secrets of one of ${whose} endpoints: ids and expiry, never values.`,
      guard: { kind: 'session' },
      permission: read,
      rateCategory: 'read',
      schema: { params: one, response: { 200: z.strictObject({ secrets: z.array(secretView) }) } },
      handler: async ({ params }) => ({ secrets: await endpoints.listSecrets(tenant(params), params.endpoint) }),
    }),
    defineRoute({
      method: 'DELETE',
      url: `${base}/endpoints/:endpoint/secrets/:secret`,
      summary: `Remove a provider secret of one of ${whose} endpoints at once.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: { params: z.strictObject({ ...scope.params, endpoint: endpointName, secret: z.uuid() }), response: { 204: z.null() } },
      handler: async ({ params, reply }) => {
        await endpoints.removeSecret(tenant(params), params.endpoint, params.secret);
        return reply.code(204).send(null);
      },
    }),
    defineRoute({
      method: 'POST',
      url: `${base}/endpoints/:endpoint/destination-secret`,
      summary: `Replace the destination signing secret of one of ${whose} endpoints; the new one is returned once.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: { params: one, body: z.strictObject({}).nullish(), response: { 200: z.strictObject({ destinationSecret: z.string() }) } },
      handler: async ({ params }) => ({ destinationSecret: await endpoints.rotateDestinationSecret(tenant(params), params.endpoint) }),
    }),
  ] as RouteDef[];
}

/** Received events, their attempts, redelivery. */
function eventRoutes(deps: AdminRouteDeps, scope: AdminScope): RouteDef[] {
  const { events } = deps;
  const { base, tenant, read, manage, whose } = scope;
  const oneEvent = z.strictObject({ ...scope.params, event: z.uuid() });
  return [
    defineRoute({
      method: 'GET',
      url: `${base}/events`,
      summary: `List events received by ${whose} endpoints, newest first, with their delivery state.`,
      guard: { kind: 'session' },
      permission: read,
      rateCategory: 'read',
      schema: {
        params: z.strictObject(scope.params),
        querystring: z.strictObject({ endpoint: endpointName.optional(), status: eventStatus.optional(), before: z.iso.datetime().optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
        response: { 200: z.strictObject({ events: z.array(eventView) }) },
      },
      handler: async ({ params, query }) => ({
        events: await events.list(tenant(params), { ...(query.endpoint ? { endpoint: query.endpoint } : {}), ...(query.status ? { status: query.status } : {}), ...(query.before ? { before: new Date(query.before) } : {}), limit: query.limit }),
      }),
    }),
    defineRoute({
      method: 'GET',
      url: `${base}/events/:event`,
      summary: `One event of ${whose} endpoints with its delivery attempts.`,
      guard: { kind: 'session' },
      permission: read,
      rateCategory: 'read',
      schema: { params: oneEvent, response: { 200: z.strictObject({ event: eventView, attempts: z.array(attemptView) }) } },
      handler: async ({ params }) => events.get(tenant(params), params.event),
    }),
    defineRoute({
      method: 'POST',
      url: `${base}/events/:event/redeliver`,
      summary: `Deliver an event of ${whose} endpoints again now (also a dead-lettered one), with a full new round of attempts.`,
      guard: { kind: 'session' },
      permission: manage,
      rateCategory: 'write',
      schema: { params: oneEvent, body: z.strictObject({}).nullish(), response: { 200: z.strictObject({ event: eventView }) } },
      handler: async ({ params }) => {
        const event = await events.redeliver(tenant(params), params.event);
        deps.kick();
        return { event };
      },
    }),
  ] as RouteDef[];
}
