/**
 * The AI routes, for API keys (apiKey guard with a scope, rate category `ai`): OpenAI-compatible
 * `/v1/chat/completions`, `/v1/embeddings`, `/v1/models` and Anthropic's `/v1/messages`. Every
 * error of these routes is rendered in the vendor's shape through the route's `errorFormat`.
 */
import { z } from 'zod';
import { defineRoute, type ErrorFormat, type RouteDef } from '../../server/route.ts';
import { adapterFor } from '../adapters/index.ts';
import { createForwardCall } from '../forward-call.ts';
import { credentialAllowsModel } from '../credentials.ts';
import { verifiedKeyOf } from '../keys.ts';
import { HOPS_HEADER, nextHops } from '../loop.ts';
import { UNLISTED_REASONS } from '../model-listing.ts';
import { assertAnyProvider, listModels } from '../routing.ts';
import type { WireFormat } from '../usage.ts';
import { toVendorErrorBody, vendorErrorHeaders } from '../vendor-errors.ts';
import type { GatewayFeatureDeps } from './shared.ts';

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

/** Errors of an AI route in the vendor's shape, so the stock SDKs raise their usual exceptions. */
function vendorErrorFormat(format: WireFormat): ErrorFormat {
  return {
    name: format,
    schema: adapterFor(format).errorSchema,
    render: (error) => {
      const input = { status: error.status, code: error.code, message: error.message, headers: { ...error.headers }, requestId: error.requestId };
      return { body: toVendorErrorBody(format, input), headers: vendorErrorHeaders(input) };
    },
  };
}

/** The AI routes of the gateway. */
export function aiRoutes(deps: GatewayFeatureDeps): RouteDef[] {
  const { routing } = deps;
  const forwardCall = createForwardCall(deps);
  const ai = {
    permission: null,
    rateCategory: 'ai' as const,
    bodyLimit: deps.bodyLimitBytes,
    // Browser pages call these with client tokens (GW-6): the token's verifier checks the origin.
    cors: 'any-origin' as const,
  };
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/chat/completions',
      summary: 'OpenAI-compatible chat completion, JSON or streamed (SSE), routed to the workspace\'s providers.',
      guard: { kind: 'apiKey', scope: 'ai:chat' },
      ...ai,
      budgets: ['ai_tokens', 'ai_cost'],
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
      budgets: ['embedding_tokens', 'ai_cost'],
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
      budgets: ['ai_tokens', 'ai_cost'],
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
        const platform = deps.platform();
        assertAnyProvider(workspace, platform);
        const { ids, unlisted } = await deps.modelLister.list([...workspace.providers, ...platform], hops);
        const models = listModels(workspace, platform, ids).filter((m) => credentialAllowsModel(key.delegation, m.id));
        const data = models.map((m) => ({ id: m.id, object: 'model' as const, created: 0, owned_by: m.ownedBy }));
        return { object: 'list' as const, data, ...(unlisted.length > 0 ? { unlisted } : {}) };
      },
    }),
  ];
}
