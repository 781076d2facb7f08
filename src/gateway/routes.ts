/**
 * The gateway's routes (GW-1..4).
 *
 * Management, for members of an org (session guard, tenancy's permission matrix):
 * API keys per workspace (editors and above), the workspace's own providers and model routing
 * (admins), and the org's usage (every member).
 *
 * The AI routes, for API keys (apiKey guard with a scope, rate category `ai`): OpenAI-compatible
 * `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` and Anthropic's `/v1/messages`. Their
 * clients are the vendors' SDKs, so every error of these routes (the guard's, rate limits, body
 * and validation errors, refusals here) is rendered in the vendor's shape through the route's
 * `errorFormat`, and the proxy writes upstream failures in the same shape.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { z } from 'zod';
import { modelPatternSchema, providerBaseUrlSchema, providerIdSchema, PROVIDER_KINDS } from '../config/gateway.ts';
import { AppError } from '../server/errors.ts';
import { defineRoute, type Authority, type ErrorFormat, type Feature, type Principal, type SealedColumn } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { credentialAllowsModel } from './credentials.ts';
import { GATEWAY_ERROR_CODES } from './error-codes.ts';
import { GatewayError } from './errors.ts';
import { API_KEY_SCOPES, DEFAULT_API_KEY_SCOPES, verifiedKeyOf, type ApiKeys } from './keys.ts';
import type { InflightCalls } from './inflight.ts';
import { monthAt, monthOf, readUsageReport, type Meter } from './metering.ts';
import type { LimitedKey } from './monthly-limit.ts';
import type { PriceTable } from './prices.ts';
import { HOPS_HEADER, nextHops } from './loop.ts';
import { UNLISTED_REASONS, type ModelLister } from './model-listing.ts';
import type { GatewayProxy } from './proxy.ts';
import { assertAnyProvider, listModels, resolveTargets, type RoutableProvider, type Routing } from './routing.ts';
import type { WireFormat } from './usage.ts';
import { runStepsBefore, settleSteps, type AiCallOutcome, type AiCallStep, type AiOperation } from './steps.ts';
import { fromAppError, sendVendorError, toVendorErrorBody, vendorErrorHeaders } from './vendor-errors.ts';

const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
const keyParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), key: z.string().regex(/^[0-9A-Za-z]{16}$/) });
const providerParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), provider: providerIdSchema });
const orgParams = z.strictObject({ org: z.uuid() });
const noContent = z.null();

const apiKeySchema = z.object({
  id: z.string(),
  workspaceId: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  expiresAt: z.string().nullable(),
  monthlyLimit: z.number().nullable(),
  rateLimitPerMinute: z.number().nullable(),
  createdBy: z.string(),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
  lastUsedAt: z.string().nullable(),
});

const providerViewSchema = z.object({
  name: z.string(),
  kind: z.enum(PROVIDER_KINDS),
  baseUrl: z.string(),
  apiVersion: z.string().nullable(),
  deployments: z.record(z.string(), z.string()).nullable(),
  streamUsage: z.boolean().nullable(),
  models: z.array(z.string()),
  keySet: z.literal(true),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const aliasSchema = z.strictObject({
  name: modelPatternSchema.refine((v) => !v.includes('*'), 'an alias is a name, not a pattern'),
  targets: z
    .array(z.strictObject({ model: modelPatternSchema.refine((v) => !v.includes('*'), 'a target is a model name, not a pattern'), provider: providerIdSchema.nullable().default(null) }))
    .min(1)
    .max(10),
});
const settingsSchema = z.object({
  allowedModels: z.array(z.string()).nullable(),
  aliases: z.array(z.object({ name: z.string(), targets: z.array(z.object({ model: z.string(), provider: z.string().nullable() })) })),
});

const totalsSchema = {
  requests: z.number(),
  inputTokens: z.number(),
  outputTokens: z.number(),
  costMicroUsd: z.number(),
  estimatedRequests: z.number(),
  failedRequests: z.number(),
};
const usageSchema = z.object({
  month: z.string(),
  from: z.string(),
  to: z.string(),
  org: z.object(totalsSchema),
  workspaces: z.array(z.object({ workspaceId: z.string(), ...totalsSchema })),
  keys: z.array(z.object({ keyId: z.string(), workspaceId: z.string(), name: z.string().nullable(), ...totalsSchema })),
});

// The AI routes' bodies: the fields the gateway reads are checked, the rest passes to the provider.
const modelName = z.string().min(1).max(256);
const chatBody = z.looseObject({ model: modelName, messages: z.array(z.unknown()).min(1), stream: z.boolean().optional() });
const embeddingsBody = z.looseObject({ model: modelName, input: z.union([z.string(), z.array(z.unknown()).min(1)]) });
const messagesBody = z.looseObject({ model: modelName, messages: z.array(z.unknown()).min(1), max_tokens: z.number().int().min(1), stream: z.boolean().optional() });
// A relayed answer is the provider's own JSON or SSE; documented loosely.
const relayed = z.looseObject({});
const modelsList = z.object({
  object: z.literal('list'),
  data: z.array(z.object({ id: z.string(), object: z.literal('model'), created: z.number(), owned_by: z.string() })),
  // Providers with `*` patterns that could not be asked for their models, and why (src/gateway/model-listing.ts).
  unlisted: z.array(z.object({ provider: z.string(), reason: z.enum(UNLISTED_REASONS) })).optional(),
});

const openAIErrorSchema = z.object({ error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }) });
const anthropicErrorSchema = z.object({ type: z.literal('error'), error: z.object({ type: z.string(), message: z.string() }), request_id: z.string().optional() });

/** Errors of an AI route in the vendor's shape, so the stock SDKs raise their usual exceptions. */
function vendorErrorFormat(format: WireFormat): ErrorFormat {
  return {
    name: format,
    schema: format === 'anthropic' ? anthropicErrorSchema : openAIErrorSchema,
    render: (error) => {
      const input = { status: error.status, code: error.code, message: error.message, headers: { ...error.headers }, requestId: error.requestId };
      return { body: toVendorErrorBody(format, input), headers: vendorErrorHeaders(input) };
    },
  };
}

function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

function scopeOf(authority: Authority | undefined): { orgId: string; wsId: string } {
  // The server sets authority for every route that declares a permission; its absence is a wiring bug.
  if (!authority?.tenantId || !authority.workspaceId) throw new Error('workspace route ran without an authority');
  return { orgId: authority.tenantId, wsId: authority.workspaceId };
}

function orgOf(authority: Authority | undefined): string {
  if (!authority?.tenantId) throw new Error('tenant route ran without an authority');
  return authority.tenantId;
}


/** Vendor keys brought by a workspace, sealed with the tenant's data key. */
export const GATEWAY_SEALED_COLUMNS: readonly SealedColumn[] = [{ table: 'provider_credentials', column: 'api_key_sealed', idColumn: 'id', tenantColumn: 'tenant_id' }];
export interface GatewayFeatureDeps {
  db: Db;
  keys: ApiKeys;
  routing: Routing;
  meter: Meter;
  proxy: GatewayProxy;
  prices: PriceTable;
  platform: readonly RoutableProvider[];
  /** Counts a call against the key's monthly limit; throws when it is over (createMonthlyLimit). */
  countMonthlyCall: (key: LimitedKey, now: number) => Promise<void>;
  /** The calls running now: stopped and awaited at shutdown. */
  inflight: InflightCalls;
  logger: Logger;
  now: () => number;
  bodyLimitBytes: number;
  /** This node's id in `x-gatehouse-hops` (src/gateway/loop.ts). */
  nodeId: string;
  /** Asks providers with `*` patterns which models they offer (src/gateway/model-listing.ts). */
  modelLister: ModelLister;
  /** The steps other features add around every AI call (src/gateway/steps.ts), in run order; read per call. */
  callSteps?: () => readonly AiCallStep[];
}

const OPERATIONS: Readonly<Record<string, AiOperation>> = { '/v1/chat/completions': 'chat', '/v1/embeddings': 'embeddings', '/v1/messages': 'messages' };

/**
 * The gateway feature: its routes, error codes, audit actions and sealed column.
 * @example const feature = createGatewayFeature({ db, keys, routing, meter, proxy, prices, platform, countMonthlyCall, inflight, logger, now, bodyLimitBytes })
 */
export function createGatewayFeature(deps: GatewayFeatureDeps): Feature {
  const { keys, routing, meter, proxy, prices, platform, logger, now } = deps;

  /**
   * One AI call: resolve the model for the key's workspace, count it against the key's monthly
   * limit, then hand the response to the proxy and meter what came back. Everything that can
   * refuse the call runs before the reply is hijacked, so refusals take the one error path.
   */
  async function forwardCall(
    format: WireFormat,
    path: string,
    request: FastifyRequest,
    reply: FastifyReply,
    body: Record<string, unknown> & { model: string },
    stream: boolean,
  ): Promise<void> {
    // First: a call that came back to this node must not cost a routing load, a monthly count or a call.
    const hops = nextHops(request.headers[HOPS_HEADER], deps.nodeId);
    const key = verifiedKeyOf(request);
    // A client token that names its models calls only those (the name asked for: a model or an alias).
    if (!credentialAllowsModel(key.delegation, body.model)) throw new GatewayError('CREDENTIAL_MODEL_NOT_ALLOWED', `This token may not call the model '${body.model}'.`);
    const workspace = await routing.load(key.tenantId, key.workspaceId);
    const { targets, labels } = resolveTargets(workspace, platform, format, body.model);
    const started = now();
    const onSettleError = (step: string, err: unknown): void => logger.error({ err, step, requestId: request.id }, 'settling an AI call step failed');
    // Steps of other features (input guard, budgets) may refuse the call; each that ran is settled once.
    const steps = deps.callSteps?.() ?? [];
    const aiCall = { requestId: request.id, format, operation: OPERATIONS[path] ?? 'chat', tenantId: key.tenantId, workspaceId: key.workspaceId, apiKeyId: key.id, model: body.model, stream, body, startedAt: started };
    const { pending, headers } = steps.length > 0 ? await runStepsBefore(steps, aiCall, onSettleError) : { pending: [], headers: {} };
    let outcome: AiCallOutcome | undefined;
    try {
      await deps.countMonthlyCall(key, started);
    } catch (err) {
      await settleSteps(pending, undefined, onSettleError);
      throw err;
    }
    for (const [name, value] of Object.entries(headers)) void reply.header(name, value);

    // The proxy writes the raw response: headers set so far (security, rate limit, request id) go with it.
    const raw = reply.raw;
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, typeof value === 'number' ? String(value) : value);
    reply.hijack();
    // Registered until metered: shutdown stops it with an answer in the client's format, and waits
    // for it before the meter's last write.
    const call = deps.inflight.begin(key.id, monthAt(started).month, raw);
    try {
      const result = await proxy.forward({ format, path, body: aiCall.body, stream, targets, requestId: request.id, hops, signal: call.signal }, raw);
      let cost: number | null = null;
      try {
        cost = prices.costOf(result.model, result.usage);
      } catch (err) {
        logger.error({ err, model: result.model }, 'cost out of range: metered without cost');
      }
      meter.record({
        tenantId: key.tenantId,
        workspaceId: key.workspaceId,
        apiKeyId: key.id,
        subject: key.delegation?.subject ?? null,
        provider: labels.get(result.providerId) ?? result.providerId,
        model: result.model,
        inputTokens: result.usage.inputTokens,
        outputTokens: result.usage.outputTokens,
        estimated: result.usage.estimated,
        costMicroUsd: cost,
        status: result.status,
        errorCode: result.errorCode ?? null,
        durationMs: result.upstreamMs,
        at: new Date(started),
      });
      outcome = { status: result.status, usage: result.usage, costMicroUsd: cost, model: result.model, clientClosed: result.clientClosed, ...(result.errorCode ? { errorCode: result.errorCode } : {}) };
      if (result.error && result.status >= 500) {
        // The error's cause holds the network error (host and port, never a key); it is scrubbed like every log line.
        logger.warn({ requestId: request.id, code: result.errorCode, provider: labels.get(result.providerId), attempts: result.attempts, err: result.error }, 'gateway call failed');
      }
    } catch (err) {
      // Only a bug lands here (the proxy answers upstream failures itself); the client still gets an answer.
      logger.error({ err, requestId: request.id }, 'gateway call failed unexpectedly');
      sendVendorError(raw, format, fromAppError(new AppError('INTERNAL'), request.id));
    } finally {
      await settleSteps(pending, outcome, onSettleError);
      call.end();
    }
  }

  const ai = {
    permission: null,
    rateCategory: 'ai' as const,
    bodyLimit: deps.bodyLimitBytes,
    // Browser pages call these with client tokens (GW-6): the token's verifier checks the origin.
    cors: 'any-origin' as const,
  };

  return {
    id: 'gateway',
    errorCodes: GATEWAY_ERROR_CODES,
    sealedColumns: GATEWAY_SEALED_COLUMNS,
    routes: [
      // -------------------------------------------------------------------------------------
      // API keys
      defineRoute({
        method: 'POST',
        url: '/v1/orgs/:org/workspaces/:ws/api-keys',
        summary: 'Create an API key for the workspace. The key is in this response only; it is stored as a hash.',
        guard: { kind: 'session' },
        permission: 'apikeys.manage',
        rateCategory: 'write',
        schema: {
          params: wsParams,
          body: z.strictObject({
            name: z.string().trim().min(1).max(100),
            scopes: z
              .array(z.enum(API_KEY_SCOPES))
              .min(1)
              .max(API_KEY_SCOPES.length)
              .refine((s) => new Set(s).size === s.length, 'scopes must not repeat')
              .optional(),
            expiresAt: z.iso.datetime({ offset: true }).optional(),
            monthlyLimit: z.number().int().min(1).max(1_000_000_000).optional(),
            rateLimitPerMinute: z.number().int().min(1).max(1_000_000).optional(),
          }),
          response: { 201: z.object({ key: z.string(), apiKey: apiKeySchema }) },
        },
        handler: async ({ authority, principal, body, reply }) => {
          const { orgId, wsId } = scopeOf(authority);
          const expiresAt = body.expiresAt === undefined ? null : new Date(body.expiresAt);
          if (expiresAt !== null && expiresAt.getTime() <= now()) throw new AppError('VALIDATION_FAILED', 'body.expiresAt: must be in the future');
          const created = await keys.create(orgId, wsId, userOf(principal), {
            name: body.name,
            scopes: body.scopes ?? DEFAULT_API_KEY_SCOPES,
            expiresAt,
            monthlyLimit: body.monthlyLimit ?? null,
            rateLimitPerMinute: body.rateLimitPerMinute ?? null,
          });
          reply.code(201);
          return created;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/api-keys',
        summary: 'List the workspace\'s API keys (revoked ones included), without their secrets.',
        guard: { kind: 'session' },
        permission: 'apikeys.read',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: z.object({ apiKeys: z.array(apiKeySchema) }) } },
        handler: async ({ authority }) => {
          const { orgId, wsId } = scopeOf(authority);
          return { apiKeys: await keys.list(orgId, wsId) };
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws/api-keys/:key',
        summary: 'Revoke an API key. Refused on every node within a second.',
        guard: { kind: 'session' },
        permission: 'apikeys.manage',
        rateCategory: 'write',
        schema: { params: keyParams, response: { 204: noContent } },
        handler: async ({ authority, params, reply }) => {
          const { orgId, wsId } = scopeOf(authority);
          await keys.revoke(orgId, wsId, params.key);
          reply.code(204);
          return null;
        },
      }),

      // -------------------------------------------------------------------------------------
      // The workspace's own providers and model routing
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/providers',
        summary: 'List the workspace\'s own providers. Vendor keys are write-only: never shown.',
        guard: { kind: 'session' },
        permission: 'providers.manage',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: z.object({ providers: z.array(providerViewSchema) }) } },
        handler: async ({ authority }) => {
          const { orgId, wsId } = scopeOf(authority);
          return { providers: await routing.listProviders(orgId, wsId) };
        },
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/workspaces/:ws/providers/:provider',
        summary: 'Create or replace one of the workspace\'s own providers (bring your own key). The key is sealed with the org\'s data key and never shown again.',
        guard: { kind: 'session' },
        permission: 'providers.manage',
        rateCategory: 'write',
        schema: {
          params: providerParams,
          body: z.strictObject({
            kind: z.enum(PROVIDER_KINDS),
            baseUrl: providerBaseUrlSchema,
            apiKey: z.string().max(4096),
            apiVersion: z.string().min(1).max(50).optional(),
            deployments: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).optional(),
            streamUsage: z.boolean().optional(),
            models: z.array(modelPatternSchema).min(1).max(1000),
          }),
          response: { 200: providerViewSchema },
        },
        handler: async ({ authority, principal, params, body }) => {
          const { orgId, wsId } = scopeOf(authority);
          return routing.setProvider(orgId, wsId, userOf(principal), params.provider, body);
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws/providers/:provider',
        summary: 'Delete one of the workspace\'s own providers and its sealed key.',
        guard: { kind: 'session' },
        permission: 'providers.manage',
        rateCategory: 'write',
        schema: { params: providerParams, response: { 204: noContent } },
        handler: async ({ authority, params, reply }) => {
          const { orgId, wsId } = scopeOf(authority);
          await routing.removeProvider(orgId, wsId, params.provider);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/models',
        summary: 'The workspace\'s model routing: allowed models (null: all its providers serve) and aliases with their fallback chains.',
        guard: { kind: 'session' },
        permission: 'workspaces.read',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: settingsSchema } },
        handler: async ({ authority }) => {
          const { orgId, wsId } = scopeOf(authority);
          return routing.getSettings(orgId, wsId);
        },
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/workspaces/:ws/models',
        summary: 'Replace the workspace\'s model routing. Applies to the next call on every node.',
        guard: { kind: 'session' },
        permission: 'providers.manage',
        rateCategory: 'write',
        schema: {
          params: wsParams,
          body: z.strictObject({
            allowedModels: z.array(modelPatternSchema).max(1000).nullable().default(null),
            aliases: z
              .array(aliasSchema)
              .max(100)
              .refine((a) => new Set(a.map((x) => x.name)).size === a.length, 'alias names must not repeat')
              .default([]),
          }),
          response: { 200: settingsSchema },
        },
        handler: async ({ authority, body }) => {
          const { orgId, wsId } = scopeOf(authority);
          return routing.setSettings(orgId, wsId, body);
        },
      }),

      // -------------------------------------------------------------------------------------
      // Usage
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/usage',
        summary: 'The org\'s AI usage in a month (UTC): requests, tokens and cost per API key, per workspace and in total.',
        guard: { kind: 'session' },
        permission: 'usage.read',
        rateCategory: 'read',
        schema: {
          params: orgParams,
          querystring: z.strictObject({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'YYYY-MM').optional() }),
          response: { 200: usageSchema },
        },
        handler: async ({ authority, query }) => {
          // This node's buffered records first, so a caller sees its own calls at once.
          await meter.flush();
          return readUsageReport(deps.db, orgOf(authority), query.month ?? monthOf(now()));
        },
      }),

      // -------------------------------------------------------------------------------------
      // The AI routes
      defineRoute({
        method: 'POST',
        url: '/v1/chat/completions',
        summary: 'OpenAI-compatible chat completion, JSON or streamed (SSE), routed to the workspace\'s providers.',
        guard: { kind: 'apiKey', scope: 'ai:chat' },
        ...ai,
        errorFormat: vendorErrorFormat('openai'),
        schema: { body: chatBody, response: { 200: relayed } },
        handler: async ({ request, reply, body }) => forwardCall('openai', '/v1/chat/completions', request, reply, body, body.stream === true),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/embeddings',
        summary: 'OpenAI-compatible embeddings, routed to the workspace\'s providers.',
        guard: { kind: 'apiKey', scope: 'ai:embeddings' },
        ...ai,
        errorFormat: vendorErrorFormat('openai'),
        schema: { body: embeddingsBody, response: { 200: relayed } },
        handler: async ({ request, reply, body }) => forwardCall('openai', '/v1/embeddings', request, reply, body, false),
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/messages',
        summary: 'Anthropic-compatible messages, JSON or streamed (SSE); the key may come as x-api-key.',
        guard: { kind: 'apiKey', scope: 'ai:chat' },
        ...ai,
        errorFormat: vendorErrorFormat('anthropic'),
        schema: { body: messagesBody, response: { 200: relayed } },
        handler: async ({ request, reply, body }) => forwardCall('anthropic', '/v1/messages', request, reply, body, body.stream === true),
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/models',
        summary:
          'OpenAI-compatible model list: the aliases and models this key\'s workspace may call; providers with `*` patterns are asked for their models (cached). Providers that could not be asked are named under `unlisted` with a reason.',
        guard: { kind: 'apiKey', scope: 'ai:models' },
        permission: null,
        rateCategory: 'ai',
        cors: 'any-origin',
        errorFormat: vendorErrorFormat('openai'),
        schema: { response: { 200: modelsList } },
        handler: async ({ request }) => {
          // A provider pointing back at Gatehouse is refused there, not listed in a loop.
          const hops = nextHops(request.headers[HOPS_HEADER], deps.nodeId);
          const key = verifiedKeyOf(request);
          const workspace = await routing.load(key.tenantId, key.workspaceId);
          assertAnyProvider(workspace, platform);
          const { ids, unlisted } = await deps.modelLister.list([...workspace.providers, ...platform], hops);
          const models = listModels(workspace, platform, ids).filter((m) => credentialAllowsModel(key.delegation, m.id));
          const data = models.map((m) => ({ id: m.id, object: 'model' as const, created: 0, owned_by: m.ownedBy }));
          return { object: 'list' as const, data, ...(unlisted.length > 0 ? { unlisted } : {}) };
        },
      }),
    ],
  };
}
