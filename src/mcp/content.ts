/**
 * Prompts and resources through Gatehouse (GW-5), beside tools (src/mcp/calls.ts):
 *
 * - Prompts are reviewed like tools (approved only, `<server>__<prompt>`, the key's allowlist);
 *   `prompts/get` checks the arguments against the approved definition (required present, no
 *   unknown names), and the messages the upstream returns pass the result inspectors (the input
 *   guard): under `enforce` a block verdict refuses the request (MCP_RESULT_BLOCKED), under
 *   `monitor` it is audited.
 * - Resources come from servers whose resources an admin opted in. Their URIs are namespaced as
 *   `gatehouse://<server>/<upstream uri>` (templates too, so an expanded template still names its
 *   server); `resources/read` passes the contents through the inspectors like a tool result.
 *
 * Every get and read is audited (server, name or URI, outcome, sizes, verdict: never content).
 */
import type { CallToolResult, ContentBlock, GetPromptResult, Prompt, ReadResourceResult, Resource, ResourceTemplate } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { byteLength, inspectResult, recordMcpEvent, rpcError, type McpCaller, type McpMetrics } from './call-support.ts';
import { McpGatewayError, resultWithheld } from './errors.ts';
import type { McpResultInspector, McpResultVerdict } from './hooks.ts';
import type { CatalogPrompt, KeyCatalog, ResourceServer, ResultPolicy } from './registry-model.ts';
import type { McpRegistry } from './registry.ts';
import { upstreamFailure, type McpUpstreams, type UpstreamTarget } from './upstream.ts';

export const RESOURCE_SCHEME = 'gatehouse:';
/** Most resources (and templates) listed from one upstream. */
const MAX_RESOURCES_PER_SERVER = 1000;

export interface ContentDeps {
  registry: McpRegistry;
  upstreams: McpUpstreams;
  audit: AuditLog;
  logger: Logger;
  now: () => number;
  maxResultBytes: number;
  inspectors: () => readonly McpResultInspector[];
  catalog: (caller: McpCaller) => Promise<KeyCatalog>;
}

/** `gatehouse://<server>/<rest>` -> server and upstream URI; null when it is not one of ours. */
export function parseResourceUri(uri: string): { server: string; uri: string } | null {
  const m = /^gatehouse:\/\/([a-z0-9](?:[a-z0-9]|-(?!-)){0,31})\/(.+)$/s.exec(uri);
  return m ? { server: m[1] as string, uri: m[2] as string } : null;
}
const namespaced = (server: string, uri: string): string => `${RESOURCE_SCHEME}//${server}/${uri}`;

/** The text the inspectors read of prompt messages or resource contents, as a tool result. */
function asToolResult(parts: readonly ContentBlock[]): CallToolResult {
  return { content: [...parts] };
}
function resourceParts(result: ReadResourceResult): ContentBlock[] {
  return result.contents.map((c) => ({ type: 'resource', resource: c }) as ContentBlock);
}

/** @example const content = createContentGateway(deps, metrics); await content.getPrompt(caller, 'docs__summary', {}) */
export function createContentGateway(deps: ContentDeps, metrics: McpMetrics) {
  const { registry, upstreams, logger, now } = deps;

  async function targetOf(caller: McpCaller, s: Pick<ResourceServer, 'serverId' | 'url' | 'version' | 'headersSealed'>): Promise<UpstreamTarget> {
    return { id: s.serverId, url: s.url, version: s.version, headers: await registry.openHeaders(caller.tenantId, s.serverId, s.headersSealed) };
  }

  /**
   * Inspects what came back and applies the server's policy; audits and counts. Throws an McpError
   * for a refusal (blocked under enforce, an inspector down, too large, an upstream failure).
   */
  async function judge<T>(caller: McpCaller, kind: 'prompt' | 'resource', where: { server: string; name: string; policy: ResultPolicy }, started: number, fetch: () => Promise<{ result: T; parts: ContentBlock[] }>): Promise<T> {
    const action = kind === 'prompt' ? 'mcp.prompt.got' : 'mcp.resource.read';
    let verdict: McpResultVerdict = { verdict: 'allow' };
    let resultBytes = 0;
    let outcome = 'failed';
    try {
      const { result, parts } = await fetch();
      resultBytes = byteLength(result);
      if (resultBytes > deps.maxResultBytes) throw resultWithheld('MCP_RESULT_TOO_LARGE', kind);
      try {
        verdict = await inspectResult(deps.inspectors(), asToolResult(parts), { requestId: caller.requestId, tenantId: caller.tenantId, workspaceId: caller.workspaceId, apiKeyId: caller.apiKeyId, server: where.server, tool: where.name });
      } catch (err) {
        logger.error({ err, requestId: caller.requestId }, `an MCP result inspector failed: ${kind} withheld`);
        throw resultWithheld('MCP_GUARD_UNAVAILABLE', kind);
      }
      if (verdict.verdict === 'block' && where.policy === 'enforce') throw resultWithheld('MCP_RESULT_BLOCKED', kind);
      outcome = 'ok';
      return result;
    } catch (err) {
      const failure = upstreamFailure(err);
      outcome = failure.code === 'MCP_RESULT_BLOCKED' || resultBytes > 0 ? 'blocked' : 'failed';
      throw rpcError(failure);
    } finally {
      metrics.reads.inc({ workspace: caller.workspaceId, server: where.server, kind, outcome });
      await recordMcpEvent(deps, caller, { action, targetType: `mcp_${kind}`, target: `${where.server}:${where.name}` }, {
        server: where.server,
        outcome,
        verdict: verdict.verdict,
        reasons: (verdict.reasons ?? []).join(' ').slice(0, 500) || null,
        resultPolicy: where.policy,
        durationMs: now() - started,
        resultBytes,
      });
    }
  }

  /** A refusal before anything reached an upstream: audited, then thrown as a JSON-RPC error. */
  async function refuse(caller: McpCaller, kind: 'prompt' | 'resource', name: string, err: McpGatewayError): Promise<never> {
    metrics.reads.inc({ workspace: caller.workspaceId, server: '', kind, outcome: 'refused' });
    await recordMcpEvent(deps, caller, { action: kind === 'prompt' ? 'mcp.prompt.got' : 'mcp.resource.read', targetType: `mcp_${kind}`, target: name }, { server: null, outcome: 'refused', errorCode: err.code, resultBytes: 0 });
    throw rpcError(err);
  }

  /** Each opted-in server's listing, namespaced; a server that fails is left out (and logged). */
  async function fromServers<T>(caller: McpCaller, list: (target: UpstreamTarget) => Promise<T[]>, rename: (server: string, item: T) => T): Promise<T[]> {
    const { resourceServers } = await deps.catalog(caller);
    const lists = await Promise.all(
      resourceServers.map(async (s) => {
        try {
          return (await list(await targetOf(caller, s))).map((item) => rename(s.server, item));
        } catch (err) {
          logger.warn({ err: upstreamFailure(err), requestId: caller.requestId, server: s.server }, 'an MCP server\'s resources could not be listed');
          return [];
        }
      }),
    );
    return lists.flat();
  }

  return {
    async listPrompts(caller: McpCaller): Promise<Prompt[]> {
      return (await deps.catalog(caller)).prompts.map((p) => ({ name: p.qualifiedName, ...p.definition }));
    },

    async getPrompt(caller: McpCaller, name: string, args: Record<string, string>): Promise<GetPromptResult> {
      const started = now();
      const prompt = (await deps.catalog(caller)).prompts.find((p) => p.qualifiedName === name);
      if (!prompt) return refuse(caller, 'prompt', name.slice(0, 200), new McpGatewayError('MCP_PROMPT_NOT_ALLOWED', `The prompt ${name.slice(0, 200)} is not available to this key.`));
      const problem = promptArgumentProblem(prompt, args);
      if (problem) return refuse(caller, 'prompt', name, new McpGatewayError('MCP_ARGUMENTS_INVALID', `The arguments do not match the prompt: ${problem}`));
      return judge(caller, 'prompt', { server: prompt.server, name: prompt.name, policy: prompt.resultPolicy }, started, async () => {
        const result = await upstreams.getPrompt(await targetOf(caller, prompt), prompt.name, args);
        return { result, parts: result.messages.map((m) => m.content) };
      });
    },

    listResources: (caller: McpCaller): Promise<Resource[]> =>
      fromServers(caller, (t) => upstreams.listResources(t, MAX_RESOURCES_PER_SERVER), (server, r) => ({ ...r, uri: namespaced(server, r.uri) })),

    listResourceTemplates: (caller: McpCaller): Promise<ResourceTemplate[]> =>
      fromServers(caller, (t) => upstreams.listResourceTemplates(t, MAX_RESOURCES_PER_SERVER), (server, r) => ({ ...r, uriTemplate: namespaced(server, r.uriTemplate) })),

    async readResource(caller: McpCaller, uri: string): Promise<ReadResourceResult> {
      const started = now();
      const parsed = parseResourceUri(uri);
      const server = parsed ? (await deps.catalog(caller)).resourceServers.find((s) => s.server === parsed.server) : undefined;
      if (!parsed || !server) return refuse(caller, 'resource', uri.slice(0, 200), new McpGatewayError('MCP_RESOURCE_NOT_ALLOWED', 'This resource is not available to this key.'));
      return judge(caller, 'resource', { server: server.server, name: parsed.uri.slice(0, 150), policy: server.resultPolicy }, started, async () => {
        const result = await upstreams.readResource(await targetOf(caller, server), parsed.uri);
        const contents = result.contents.map((c) => ({ ...c, uri: namespaced(server.server, c.uri) }));
        return { result: { ...result, contents }, parts: resourceParts(result) };
      });
    },
  };
}

/** Why the arguments do not fit the approved prompt (a required one missing, an unknown one), or null. */
function promptArgumentProblem(prompt: CatalogPrompt, args: Record<string, string>): string | null {
  const declared = prompt.definition.arguments ?? [];
  const names = new Set(declared.map((a) => a.name));
  const unknown = Object.keys(args).find((k) => !names.has(k));
  if (unknown !== undefined) return `unknown argument ${unknown.slice(0, 100)}`;
  const missing = declared.find((a) => a.required === true && typeof args[a.name] !== 'string');
  return missing ? `missing required argument ${missing.name}` : null;
}

export type ContentGateway = ReturnType<typeof createContentGateway>;
