/**
 * The MCP endpoint's routes (GW-5), for API keys with the scope `mcp:tools` (rate category
 * `mcp`): `POST /v1/mcp/:workspace` (src/mcp/endpoint.ts). Its errors before the JSON-RPC layer
 * (guard, rate limit, body) are JSON-RPC error objects; a 401 carries `WWW-Authenticate: Bearer`
 * naming the scope and the protected-resource metadata (RFC 9728), served at the well-known path.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { publicBaseOf } from '../server/public-base.ts';
import { defineRoute, type ErrorFormat, type Principal, type RouteDef } from '../server/route.ts';
import type { McpCaller, ToolCaller } from './calls.ts';
import type { ContentGateway } from './content.ts';
import { serveMcpMessage } from './endpoint.ts';

export const MCP_SCOPE = 'mcp:tools';

const endpointParams = z.strictObject({ workspace: z.uuid() });

const jsonRpcError = z.object({ jsonrpc: z.literal('2.0'), id: z.null(), error: z.object({ code: z.number(), message: z.string(), data: z.object({ code: z.string(), requestId: z.string() }) }) });

/** Errors of the MCP endpoint as JSON-RPC error objects; a 401 says how to authenticate. */
const jsonRpcErrors: ErrorFormat = {
  name: 'json-rpc',
  schema: jsonRpcError,
  render: (e) => ({
    body: { jsonrpc: '2.0', id: null, error: { code: e.status === 429 ? -32029 : -32000, message: e.message, data: { code: e.code, requestId: e.requestId } } },
    ...(e.status === 401 ? { headers: { 'www-authenticate': `Bearer error="invalid_token", scope="${MCP_SCOPE}"` } } : {}),
  }),
};

/**
 * A 401 of the endpoint names its protected-resource metadata (RFC 9728 §5.1), so a client finds
 * the authorization server without guessing the well-known path. Added as the reply is sent, when
 * the request (and so the public base URL) is known.
 */
export function advertiseResourceMetadata(app: FastifyInstance, publicUrl: () => string | undefined): void {
  app.addHook('onSend', async (request, reply, payload) => {
    if (reply.statusCode === 401 && request.routeOptions.url === '/v1/mcp/:workspace') {
      const ws = (request.params as { workspace?: string }).workspace ?? '';
      const metadata = `${publicBaseOf(publicUrl(), request)}/.well-known/oauth-protected-resource/v1/mcp/${encodeURIComponent(ws)}`;
      void reply.header('www-authenticate', `Bearer error="invalid_token", scope="${MCP_SCOPE}", resource_metadata="${metadata}"`);
    }
    return payload;
  });
}

/** The key's caller, refused (404, as for any workspace that is not its own) outside the key's workspace. */
function callerOf(principal: Principal | undefined, workspace: string, requestId: string): McpCaller {
  if (!principal || principal.kind !== 'apiKey' || !principal.tenantId || !principal.workspaceId) throw new AppError('UNAUTHENTICATED');
  if (principal.workspaceId !== workspace) throw new AppError('NOT_FOUND');
  return { requestId, tenantId: principal.tenantId, workspaceId: principal.workspaceId, apiKeyId: principal.id };
}

export interface EndpointDeps {
  tools: ToolCaller;
  content: ContentGateway;
  publicUrl: string | undefined;
  bodyLimitBytes: number;
}

/** The MCP endpoint and its protected-resource metadata. */
export function endpointRoutes(deps: EndpointDeps): RouteDef[] {
  const { tools, content } = deps;
  const endpoint = { guard: { kind: 'apiKey', scope: MCP_SCOPE } as const, permission: null, rateCategory: 'mcp' as const, errorFormat: jsonRpcErrors };
  const refuseMethod = async ({ params, principal, request }: { params: { workspace: string }; principal: Principal | undefined; request: { id: string } }): Promise<never> => {
    callerOf(principal, params.workspace, request.id);
    throw new AppError('METHOD_NOT_ALLOWED', 'This MCP endpoint is stateless: POST only.', { headers: { allow: 'POST' } });
  };
  return [
    defineRoute({
      method: 'POST',
      url: '/v1/mcp/:workspace',
      summary: 'MCP (Streamable HTTP, stateless, JSON responses) for the workspace of the API key: the approved tools of its MCP servers as `<server>__<tool>`.',
      ...endpoint,
      // One per tools/call, reserved by the budgets feature through MCP_CALL_STEPS.
      budgets: ['tool_calls'],
      bodyLimit: deps.bodyLimitBytes,
      schema: {
        params: endpointParams,
        body: z.union([z.record(z.string(), z.unknown()), z.array(z.record(z.string(), z.unknown())).min(1).max(50)]),
        response: { 200: z.unknown(), 202: z.unknown(), 400: z.unknown(), 406: z.unknown(), 415: z.unknown() },
      },
      handler: async ({ params, principal, request, reply, body }) => serveMcpMessage({ tools, content }, callerOf(principal, params.workspace, request.id), request, reply, body),
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/mcp/:workspace',
      summary: 'No server-sent event stream: the endpoint is stateless (405).',
      ...endpoint,
      schema: { params: endpointParams, response: { 200: z.null() } },
      handler: refuseMethod,
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/mcp/:workspace',
      summary: 'No session to end: the endpoint is stateless (405).',
      ...endpoint,
      schema: { params: endpointParams, response: { 204: z.null() } },
      handler: refuseMethod,
    }),
    defineRoute({
      method: 'GET',
      url: '/.well-known/oauth-protected-resource/v1/mcp/:workspace',
      summary: 'OAuth 2.0 protected-resource metadata (RFC 9728) of a workspace\'s MCP endpoint: Gatehouse is the resource and its authorization server; the bearer is an OAuth access token for this endpoint or a Gatehouse API key with the scope mcp:tools.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: {
        params: endpointParams,
        response: { 200: z.object({ resource: z.string(), resource_name: z.string(), bearer_methods_supported: z.array(z.string()), scopes_supported: z.array(z.string()), authorization_servers: z.array(z.string()) }) },
      },
      handler: async ({ params, request }) => {
        const base = publicBaseOf(deps.publicUrl, request);
        return {
          resource: `${base}/v1/mcp/${params.workspace}`,
          resource_name: 'Gatehouse',
          bearer_methods_supported: ['header'],
          scopes_supported: [MCP_SCOPE],
          // Gatehouse itself issues the access tokens (src/mcp-auth); an API key with mcp:tools works too.
          authorization_servers: [base],
        };
      },
    }),
  ];
}
