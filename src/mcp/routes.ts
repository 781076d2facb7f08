/**
 * The MCP gateway's routes (GW-5).
 *
 * Management, for org admins (session guard, permission `mcp.manage`): a workspace's upstream MCP
 * servers (credentials write-only), syncing their tool and prompt lists, reviewing tools and
 * prompts (new and changed ones wait as `pending` until approved), and a key's own allowlist.
 *
 * The MCP endpoint and its metadata: src/mcp/endpoint-routes.ts.
 */
import { z } from 'zod';
import { httpUrlSchema } from '../config/url.ts';
import { userIdOf, workspaceScopeOf } from '../server/principal.ts';
import { defineRoute, type Feature, type RouteDef } from '../server/route.ts';
import type { SealedColumn } from '../server/route.ts';
import { endpointRoutes, type EndpointDeps } from './endpoint-routes.ts';
import { MCP_ERROR_CODES } from './error-codes.ts';
import type { ReviewedKind } from './registry-model.ts';
import type { McpRegistry } from './registry.ts';
import type { McpUpstreams } from './upstream.ts';

export { MCP_SCOPE } from './endpoint-routes.ts';

const serverName = z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?!-)){0,31}$/, 'lowercase letters, digits and single "-", at most 32');
const toolName = z.string().min(1).max(128);
const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
const serverParams = wsParams.extend({ server: serverName });
const keyParams = wsParams.extend({ key: z.string().regex(/^[0-9A-Za-z]{16}$/) });
const noContent = z.null();
const syncCounts = z.object({ added: z.number(), changed: z.number(), unlisted: z.number() });

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
  resources: z.boolean(),
  lastSyncedAt: z.string().nullable(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const toolView = z.object({
  server: z.string(),
  name: z.string(),
  qualifiedName: z.string(),
  description: z.string().nullable(),
  definition: z.record(z.string(), z.unknown()).meta({ description: 'The definition an approval approves (what clients are shown): a tool\'s title, description, inputSchema, outputSchema and annotations; a prompt\'s title, description and arguments.' }),
  status: z.enum(['pending', 'approved', 'denied']),
  listed: z.boolean(),
  firstSeenAt: z.string(),
  reviewedAt: z.string().nullable(),
});

export interface McpFeatureDeps extends EndpointDeps {
  registry: McpRegistry;
  upstreams: McpUpstreams;
  maxToolsPerServer: number;
  now: () => number;
  sealedColumns: readonly SealedColumn[];
}

/** @example const feature = createMcpFeature({ registry, upstreams, tools, maxToolsPerServer, publicUrl, bodyLimitBytes, now }) */
export function createMcpFeature(deps: McpFeatureDeps): Feature {
  return { id: 'mcp', errorCodes: MCP_ERROR_CODES, sealedColumns: deps.sealedColumns, routes: [...managementRoutes(deps), ...endpointRoutes(deps)] };
}

/** Listing and reviewing the tools or the prompts of a workspace's servers. */
function reviewRoutes(deps: McpFeatureDeps, kind: ReviewedKind): RouteDef[] {
  const { registry, now } = deps;
  const manage = { guard: { kind: 'session' } as const, permission: 'mcp.manage' };
  const plural = `${kind}s`;
  return [
    defineRoute({
      method: 'GET',
      url: `/v1/orgs/:org/workspaces/:ws/mcp/${plural}`,
      summary: `The ${plural} of the workspace's MCP servers with their review status; \`?status=pending\` lists what waits for review.`,
      ...manage,
      rateCategory: 'read',
      schema: { params: wsParams, querystring: z.strictObject({ status: z.enum(['pending', 'approved', 'denied']).optional() }), response: { 200: z.object({ [plural]: z.array(toolView) }) } },
      handler: async ({ authority, query }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        return { [plural]: await registry.listItems(kind, orgId, wsId, query.status) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: `/v1/orgs/:org/workspaces/:ws/mcp/servers/:server/${plural}/:${kind}`,
      summary: `Review a ${kind}: approved ${plural} are listed to and usable by the workspace's keys; denied and pending ones are neither.`,
      ...manage,
      rateCategory: 'write',
      schema: { params: serverParams.extend({ [kind]: toolName }), body: z.strictObject({ status: z.enum(['approved', 'denied']) }), response: { 204: noContent } },
      handler: async ({ authority, principal, params, body, reply }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        const p = params as Record<string, string>;
        await registry.reviewItem(kind, orgId, wsId, userIdOf(principal), p.server as string, p[kind] as string, body.status, new Date(now()));
        reply.code(204);
        return null;
      },
    }),
  ];
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
        const { orgId, wsId } = workspaceScopeOf(authority);
        return { servers: await registry.listServers(orgId, wsId) };
      },
    }),
    defineRoute({
      method: 'PUT',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server',
      summary: 'Create or replace an upstream MCP server (Streamable HTTP: a URL without credentials, query or fragment, credentials go in headers; or `stdio:<name>`, a local server the operator defined for this workspace in `mcp.stdioServers`). Headers are sealed with the org\'s data key and never shown again; omitted headers mean none. A new URL sends every tool of the server back to review.',
      ...manage,
      rateCategory: 'write',
      schema: {
        params: serverParams,
        body: z.strictObject({ url: z.union([z.string().regex(/^stdio:[a-z0-9](?:[a-z0-9]|-(?!-)){0,31}$/), httpUrlSchema({ bare: true })]), headers: headersSchema.optional(), enabled: z.boolean().optional(), resultPolicy: z.enum(['enforce', 'monitor']).optional(), resources: z.boolean().optional() }),
        response: { 200: serverView },
      },
      handler: async ({ authority, principal, params, body }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        upstreams.assertUrlAllowed(body.url, wsId);
        return registry.setServer(orgId, wsId, userIdOf(principal), params.server, body);
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
        const { orgId, wsId } = workspaceScopeOf(authority);
        const id = await registry.removeServer(orgId, wsId, params.server);
        await upstreams.forget(id);
        reply.code(204);
        return null;
      },
    }),
    defineRoute({
      method: 'POST',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/servers/:server/sync',
      summary: 'Read the server\'s tool list (and prompt list, under `prompts`, when it offers prompts) now: new items are recorded as pending (hidden and refused until approved), changed ones go back to pending.',
      ...manage,
      rateCategory: 'write',
      schema: { params: serverParams, body: z.strictObject({}), response: { 200: syncCounts.extend({ prompts: syncCounts.optional() }) } },
      handler: async ({ authority, params }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
        const target = await registry.target(orgId, wsId, params.server);
        upstreams.assertUrlAllowed(target.url, wsId);
        const listed = await upstreams.listTools(target, deps.maxToolsPerServer);
        const offersPrompts = (await upstreams.capabilities(target)).prompts !== undefined;
        const prompts = offersPrompts ? await upstreams.listPrompts(target, deps.maxToolsPerServer) : null;
        const tools = await registry.recordTools(orgId, wsId, target.id, params.server, listed, new Date(now()));
        return prompts === null ? tools : { ...tools, prompts: await registry.recordPrompts(orgId, wsId, target.id, params.server, prompts, new Date(now())) };
      },
    }),
    ...reviewRoutes(deps, 'tool'),
    ...reviewRoutes(deps, 'prompt'),
    defineRoute({
      method: 'GET',
      url: '/v1/orgs/:org/workspaces/:ws/mcp/keys/:key/tools',
      summary: 'A key\'s own MCP tool allowlist (`<server>__<tool>` names); null: every approved tool of the workspace.',
      ...manage,
      rateCategory: 'read',
      schema: { params: keyParams, response: { 200: z.object({ tools: z.array(z.string()).nullable() }) } },
      handler: async ({ authority, params }) => {
        const { orgId, wsId } = workspaceScopeOf(authority);
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
        const { orgId, wsId } = workspaceScopeOf(authority);
        await registry.setKeyTools(orgId, wsId, params.key, body.tools === null ? null : [...new Set(body.tools)]);
        reply.code(204);
        return null;
      },
    }),

  ];
}
