/**
 * The MCP gateway's routes (GW-5).
 *
 * Management, for org admins (session guard, permission `mcp.manage`): a workspace's upstream MCP
 * servers (credentials write-only), syncing their tool lists, reviewing tools (new and changed
 * tools wait as `pending` until approved), and a key's own tool allowlist.
 *
 * The MCP endpoint, for API keys with the scope `mcp:tools` (rate category `mcp`): `POST
 * /v1/mcp/:workspace` (src/mcp/endpoint.ts). Its errors before the JSON-RPC layer (guard, rate
 * limit, body) are JSON-RPC error objects; a 401 carries `WWW-Authenticate: Bearer` naming the
 * scope, and the protected-resource metadata (RFC 9728) is served at the well-known path.
 */
import { z } from 'zod';
import { httpUrlSchema } from '../config/url.ts';
import { AppError } from '../server/errors.ts';
import { defineRoute, type Authority, type ErrorFormat, type Feature, type Principal, type RouteDef } from '../server/route.ts';
import type { McpCaller, ToolCaller } from './calls.ts';
import { serveMcpMessage } from './endpoint.ts';
import { MCP_ERROR_CODES } from './error-codes.ts';
import type { McpRegistry } from './registry.ts';
import type { SealedColumn } from '../server/route.ts';
import type { McpUpstreams } from './upstream.ts';

export const MCP_SCOPE = 'mcp:tools';

const serverName = z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?!-)){0,31}$/, 'lowercase letters, digits and single "-", at most 32');
const toolName = z.string().min(1).max(128);
const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
const serverParams = wsParams.extend({ server: serverName });
const toolParams = serverParams.extend({ tool: toolName });
const keyParams = wsParams.extend({ key: z.string().regex(/^[0-9A-Za-z]{16}$/) });
const endpointParams = z.strictObject({ workspace: z.uuid() });
const noContent = z.null();

// Headers Gatehouse sets itself or that would change the transport: never from a workspace.
const RESERVED_HEADERS = new Set(['host', 'content-length', 'content-type', 'accept', 'connection', 'transfer-encoding', 'keep-alive', 'upgrade', 'te', 'trailer', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']);
const headersSchema = z
  .record(
    z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,100}$/, 'a header name').refine((n) => !RESERVED_HEADERS.has(n.toLowerCase()), 'a header Gatehouse sets itself'),
    z.string().min(1).max(4096).regex(/^[\x20-\x7e\t]*$/, 'printable ASCII'),
  )
  .refine((h) => Object.keys(h).length <= 20, 'at most 20 headers')
  .refine((h) => new Set(Object.keys(h).map((k) => k.toLowerCase())).size === Object.keys(h).length, 'header names must not repeat');

const serverView = z.object({
  name: z.string(),
  url: z.string(),
  headerNames: z.array(z.string()),
  enabled: z.boolean(),
  resultPolicy: z.enum(['enforce', 'monitor']),
  lastSyncedAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const toolView = z.object({
  server: z.string(),
  name: z.string(),
  qualifiedName: z.string(),
  description: z.string().nullable(),
  status: z.enum(['pending', 'approved', 'denied']),
  listed: z.boolean(),
  firstSeenAt: z.string(),
  reviewedAt: z.string().nullable(),
});
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

function scopeOf(authority: Authority | undefined): { orgId: string; wsId: string } {
  if (!authority?.tenantId || !authority.workspaceId) throw new Error('workspace route ran without an authority');
  return { orgId: authority.tenantId, wsId: authority.workspaceId };
}

function userOf(principal: Principal | undefined): string {
  if (!principal || principal.kind !== 'user') throw new AppError('UNAUTHENTICATED');
  return principal.id;
}

/** The key's caller, refused (404, as for any workspace that is not its own) outside the key's workspace. */
function callerOf(principal: Principal | undefined, workspace: string, requestId: string): McpCaller {
  if (!principal || principal.kind !== 'apiKey' || !principal.tenantId || !principal.workspaceId) throw new AppError('UNAUTHENTICATED');
  if (principal.workspaceId !== workspace) throw new AppError('NOT_FOUND');
  return { requestId, tenantId: principal.tenantId, workspaceId: principal.workspaceId, apiKeyId: principal.id };
}

export interface McpFeatureDeps {
  registry: McpRegistry;
  upstreams: McpUpstreams;
  tools: ToolCaller;
  maxToolsPerServer: number;
  publicUrl: string | undefined;
  bodyLimitBytes: number;
  now: () => number;
  sealedColumns: readonly SealedColumn[];
}

/** @example const feature = createMcpFeature({ registry, upstreams, tools, maxToolsPerServer, publicUrl, bodyLimitBytes, now }) */
export function createMcpFeature(deps: McpFeatureDeps): Feature {
  return { id: 'mcp', errorCodes: MCP_ERROR_CODES, sealedColumns: deps.sealedColumns, routes: [...managementRoutes(deps), ...endpointRoutes(deps)] };
}

/** The admin routes: servers, syncs, reviews, key allowlists. */
function managementRoutes(deps: McpFeatureDeps): RouteDef[] {
  const { registry, upstreams, now } = deps;
  const manage = { guard: { kind: 'session' } as const, permission: 'mcp.manage' };
  return [
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers',
      summary: 'List the workspace\'s upstream MCP servers. Their credentials are write-only: only header names are shown.',
      ...manage,
      rateCategory: 'read',
      schema: { params: wsParams, response: { 200: z.object({ servers: z.array(serverView) }) } },
      handler: async ({ authority }) => {
        const { orgId, wsId } = scopeOf(authority);
        return { servers: await registry.listServers(orgId, wsId) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server',
      summary: 'Create or replace an upstream MCP server (Streamable HTTP; a URL without credentials, query or fragment: credentials go in headers). Headers are sealed with the org\'s data key and never shown again; omitted headers mean none. A new URL sends every tool of the server back to review.',
      ...manage,
      rateCategory: 'write',
      schema: {
        params: serverParams,
        body: z.strictObject({ url: httpUrlSchema({ bare: true }), headers: headersSchema.optional(), enabled: z.boolean().optional(), resultPolicy: z.enum(['enforce', 'monitor']).optional() }),
        response: { 200: serverView },
      },
      handler: async ({ authority, principal, params, body }) => {
        const { orgId, wsId } = scopeOf(authority);
        upstreams.assertUrlAllowed(body.url);
        return registry.setServer(orgId, wsId, userOf(principal), params.server, body);
      },
    }),
    defineRoute({
      method: 'DELETE',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server',
      summary: 'Delete an upstream MCP server, its sealed credentials and its tools\' reviews.',
      ...manage,
      rateCategory: 'write',
      schema: { params: serverParams, response: { 204: noContent } },
      handler: async ({ authority, params, reply }) => {
        const { orgId, wsId } = scopeOf(authority);
        const id = await registry.removeServer(orgId, wsId, params.server);
        await upstreams.forget(id);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server/sync',
      summary: 'Read the server\'s tool list now: new tools are recorded as pending (hidden and refused until approved), changed ones go back to pending.',
      ...manage,
      rateCategory: 'write',
      schema: { params: serverParams, body: z.strictObject({}), response: { 200: z.object({ added: z.number(), changed: z.number(), unlisted: z.number() }) } },
      handler: async ({ authority, params }) => {
        const { orgId, wsId } = scopeOf(authority);
        const target = await registry.target(orgId, wsId, params.server);
        upstreams.assertUrlAllowed(target.url);
        const listed = await upstreams.listTools(target, deps.maxToolsPerServer);
        return registry.recordTools(orgId, wsId, target.id, params.server, listed, new Date(now()));
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/tools',
      summary: 'The tools of the workspace\'s MCP servers with their review status; `?status=pending` lists what waits for review.',
      ...manage,
      rateCategory: 'read',
      schema: { params: wsParams, querystring: z.strictObject({ status: z.enum(['pending', 'approved', 'denied']).optional() }), response: { 200: z.object({ tools: z.array(toolView) }) } },
      handler: async ({ authority, query }) => {
        const { orgId, wsId } = scopeOf(authority);
        return { tools: await registry.listTools(orgId, wsId, query.status) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server/tools/:tool',
      summary: 'Review a tool: approved tools are listed to and callable by the workspace\'s keys; denied and pending ones are neither.',
      ...manage,
      rateCategory: 'write',
      schema: { params: toolParams, body: z.strictObject({ status: z.enum(['approved', 'denied']) }), response: { 204: noContent } },
      handler: async ({ authority, principal, params, body, reply }) => {
        const { orgId, wsId } = scopeOf(authority);
        await registry.reviewTool(orgId, wsId, userOf(principal), params.server, params.tool, body.status, new Date(now()));
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/keys/:key/tools',
      summary: 'A key\'s own MCP tool allowlist (`<server>__<tool>` names); null: every approved tool of the workspace.',
      ...manage,
      rateCategory: 'read',
      schema: { params: keyParams, response: { 200: z.object({ tools: z.array(z.string()).nullable() }) } },
      handler: async ({ authority, params }) => {
        const { orgId, wsId } = scopeOf(authority);
        return { tools: await registry.keyTools(orgId, wsId, params.key) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/keys/:key/tools',
      summary: 'Set (a list) or clear (null) a key\'s own MCP tool allowlist. It narrows the workspace\'s approved tools; it never adds one.',
      ...manage,
      rateCategory: 'write',
      schema: { params: keyParams, body: z.strictObject({ tools: z.array(z.string().min(4).max(200)).max(1000).nullable() }), response: { 204: noContent } },
      handler: async ({ authority, params, body, reply }) => {
        const { orgId, wsId } = scopeOf(authority);
        await registry.setKeyTools(orgId, wsId, params.key, body.tools === null ? null : [...new Set(body.tools)]);
        reply.code(204);
        return null;
      },
    }),

  ];
}

/** The MCP endpoint and its protected-resource metadata. */
function endpointRoutes(deps: McpFeatureDeps): RouteDef[] {
  const { tools } = deps;
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
      handler: async ({ params, principal, request, reply, body }) => serveMcpMessage(tools, callerOf(principal, params.workspace, request.id), request, reply, body),
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
      summary: 'OAuth 2.0 protected-resource metadata (RFC 9728) of a workspace\'s MCP endpoint: Gatehouse is the resource; the bearer is a Gatehouse API key with the scope mcp:tools.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: {
        params: endpointParams,
        response: { 200: z.object({ resource: z.string(), resource_name: z.string(), bearer_methods_supported: z.array(z.string()), scopes_supported: z.array(z.string()), authorization_servers: z.array(z.string()) }) },
      },
      handler: async ({ params, request }) => {
        const base = deps.publicUrl ?? `${request.protocol}://${request.host}`;
        return {
          resource: `${base.replace(/\/$/, '')}/v1/mcp/${params.workspace}`,
          resource_name: 'Gatehouse',
          bearer_methods_supported: ['header'],
          scopes_supported: [MCP_SCOPE],
          // No OAuth authorization server issues tokens for MCP yet: the bearer is an API key.
          authorization_servers: [],
        };
      },
    }),
  ];
}
