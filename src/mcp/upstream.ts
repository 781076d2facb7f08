/**
 * Connections to a workspace's upstream MCP servers: local ones an operator defined (stdio, a
 * child process per server row, `stdio:<name>`), and Streamable HTTP ones through the official SDK's
 * client with a `fetch` whose undici Agent enforces the egress policy (src/net/egress.ts): the
 * scheme, host and port allowlist before DNS, and public addresses (or `mcp.upstream.allowedCidrs`)
 * after it, inside the socket's own lookup. Redirects are refused.
 *
 * A connected client is kept per server row and version (`updatedAt`), so a call costs one
 * upstream request, not an `initialize` handshake each time; a changed row (new URL or
 * credentials) gets a new client, and a client whose upstream session was lost is replaced once.
 */
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ErrorCode, McpError, type CallToolResult, type GetPromptResult, type Prompt, type ReadResourceResult, type Resource, type ResourceTemplate, type ServerCapabilities, type Tool } from '@modelcontextprotocol/sdk/types.js';
import { Agent, fetch as undiciFetch } from 'undici';
import { compileEgressPolicy, createGuardedConnector, EgressRefusedError, refuseEgressTarget, type EgressPolicy, type EgressResolver } from '../net/egress.ts';
import { McpGatewayError } from './errors.ts';

const CONFIG_PATH = 'mcp.upstream';

/** What a connection needs of a server row (headers already opened). */
export interface UpstreamTarget {
  id: string;
  url: string;
  /** Changes whenever the row does: a new version gets a new connection. */
  version: string;
  headers: Readonly<Record<string, string>>;
}

export interface McpUpstreams {
  /**
   * Throws MCP_SERVER_URL_NOT_ALLOWED when the URL's scheme, host or port is refused (no network),
   * or when it is `stdio:<name>` and the operator defined no such server for workspace `wsId`.
   */
  assertUrlAllowed(url: string, wsId: string): void;
  /** Every tool the upstream lists (all pages), at most `maxTools` (MCP_UPSTREAM_TOO_MANY_TOOLS beyond). */
  listTools(target: UpstreamTarget, maxTools: number): Promise<Tool[]>;
  callTool(target: UpstreamTarget, name: string, args: Record<string, unknown>): Promise<CallToolResult>;
  /** What the upstream said it offers at `initialize`. */
  capabilities(target: UpstreamTarget): Promise<ServerCapabilities>;
  /** Every prompt the upstream lists (all pages), at most `max` (MCP_UPSTREAM_TOO_MANY_TOOLS beyond). */
  listPrompts(target: UpstreamTarget, max: number): Promise<Prompt[]>;
  getPrompt(target: UpstreamTarget, name: string, args: Record<string, string>): Promise<GetPromptResult>;
  /** The upstream's resources (all pages), at most `max`: the first `max` when it lists more. */
  listResources(target: UpstreamTarget, max: number): Promise<Resource[]>;
  listResourceTemplates(target: UpstreamTarget, max: number): Promise<ResourceTemplate[]>;
  readResource(target: UpstreamTarget, uri: string): Promise<ReadResourceResult>;
  /** Closes and forgets the connections of a server (deleted or replaced). */
  forget(serverId: string): Promise<void>;
  close(): Promise<void>;
}

/** A local MCP server an operator defined (config `mcp.stdioServers`). */
export interface StdioServerConfig {
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd?: string | undefined;
  workspaces: string[];
}

export const STDIO_PREFIX = 'stdio:';

export interface McpUpstreamsOptions extends EgressPolicy {
  timeoutMs: number;
  stdioServers?: Readonly<Record<string, StdioServerConfig>>;
  resolve?: EgressResolver;
}

/** Maps what the SDK or the network threw to an MCP gateway error (never the upstream's text). */
export function upstreamFailure(err: unknown): McpGatewayError {
  if (err instanceof McpGatewayError) return err;
  if (err instanceof McpError && err.code === (ErrorCode.RequestTimeout as number)) return new McpGatewayError('MCP_UPSTREAM_TIMEOUT', undefined, { cause: err });
  const refused = findCause(err, (e) => e instanceof EgressRefusedError);
  if (refused) return new McpGatewayError('MCP_UPSTREAM_UNREACHABLE', undefined, { cause: refused });
  if (err instanceof StreamableHTTPError || err instanceof McpError) return new McpGatewayError('MCP_UPSTREAM_ERROR', undefined, { cause: err });
  return new McpGatewayError('MCP_UPSTREAM_UNREACHABLE', undefined, { cause: err });
}

function findCause(err: unknown, test: (e: unknown) => boolean): unknown {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (test(e)) return e;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Every page of a listing (at most 100 pages); past `max` items: refused (`strict`) or cut. */
async function allPages<T>(page: (params: { cursor?: string }) => Promise<{ items: T[]; next?: string | undefined }>, max: number, strict: boolean): Promise<T[]> {
  const items: T[] = [];
  let cursor: string | undefined;
  for (let n = 0; n < 100; n++) {
    const res = await page(cursor === undefined ? {} : { cursor });
    items.push(...res.items);
    if (items.length > max) {
      if (strict) throw new McpGatewayError('MCP_UPSTREAM_TOO_MANY_TOOLS');
      return items.slice(0, max);
    }
    cursor = res.next;
    if (cursor === undefined) break;
  }
  return items;
}

/** The operator's definition behind `stdio:<name>`, or undefined. */
function stdioServerOf(stdioServers: Readonly<Record<string, StdioServerConfig>>, url: string): StdioServerConfig | undefined {
  if (!url.startsWith(STDIO_PREFIX)) return undefined;
  const name = url.slice(STDIO_PREFIX.length);
  return Object.hasOwn(stdioServers, name) ? stdioServers[name] : undefined;
}

/** A child process for an operator-defined stdio server, or the guarded Streamable HTTP transport. */
function transportOf(target: UpstreamTarget, stdioServers: Readonly<Record<string, StdioServerConfig>>, guardedFetch: typeof fetch): StdioClientTransport | StreamableHTTPClientTransport {
  if (!target.url.startsWith(STDIO_PREFIX)) return new StreamableHTTPClientTransport(new URL(target.url), { fetch: guardedFetch, requestInit: { headers: { ...target.headers } } });
  const local = stdioServerOf(stdioServers, target.url);
  if (!local) throw new McpGatewayError('MCP_SERVER_URL_NOT_ALLOWED');
  // Only the operator's env beside the SDK's minimal safe environment: never Gatehouse's own.
  return new StdioClientTransport({ command: local.command, args: local.args, env: local.env, ...(local.cwd ? { cwd: local.cwd } : {}), stderr: 'ignore' });
}

/** True when the upstream forgot our session (HTTP 404 on a request with a session id): reconnect. */
function sessionLost(err: unknown): boolean {
  return err instanceof StreamableHTTPError && err.code === 404;
}

/**
 * The upstream connection pool of one node.
 * @example const upstreams = createMcpUpstreams({ allowedHosts: ['tools.example.com'], timeoutMs: 60_000 })
 */
export function createMcpUpstreams(options: McpUpstreamsOptions): McpUpstreams {
  const compiled = compileEgressPolicy(options, CONFIG_PATH);
  const agent = new Agent({
    connect: createGuardedConnector({
      refuseTarget: (protocol, hostname, port) => refuseEgressTarget(protocol, hostname, port, compiled),
      addressAllowed: compiled.addressAllowed,
      ...(options.resolve ? { resolve: options.resolve } : {}),
    }),
    keepAliveTimeout: 10_000,
    connections: 64,
    pipelining: 1,
  });
  // Every request of the SDK goes through the guarded agent; a redirect is an error, never followed.
  const guardedFetch = ((url: string | URL, init?: RequestInit) =>
    undiciFetch(url, { ...(init as object), dispatcher: agent, redirect: 'error' } as Parameters<typeof undiciFetch>[1])) as unknown as typeof fetch;
  const clients = new Map<string, { version: string; client: Promise<Client> }>();

  const stdioServers = options.stdioServers ?? {};
  const stdioOf = (url: string) => stdioServerOf(stdioServers, url);

  async function connect(target: UpstreamTarget): Promise<Client> {
    const client = new Client({ name: 'gatehouse', version: '1' }, { capabilities: {} });
    await client.connect(transportOf(target, stdioServers, guardedFetch), { timeout: options.timeoutMs });
    return client;
  }

  function clientOf(target: UpstreamTarget): Promise<Client> {
    const held = clients.get(target.id);
    if (held && held.version === target.version) return held.client;
    if (held) void held.client.then((c) => c.close()).catch(() => undefined);
    const client = connect(target);
    clients.set(target.id, { version: target.version, client });
    // A connection that ended (a child process that exited, a closed transport) is not reused.
    void client.then((c) => {
      c.onclose = () => {
        if (clients.get(target.id)?.client === client) clients.delete(target.id);
      };
    }, () => undefined);
    // A failed connection is not kept: the next call tries again.
    client.catch(() => {
      if (clients.get(target.id)?.client === client) clients.delete(target.id);
    });
    return client;
  }

  /** Runs `fn` on the server's client; once more on a fresh client when the upstream lost the session. */
  async function withClient<T>(target: UpstreamTarget, fn: (client: Client) => Promise<T>): Promise<T> {
    try {
      return await fn(await clientOf(target));
    } catch (err) {
      if (!sessionLost(err)) throw upstreamFailure(err);
      clients.delete(target.id);
      try {
        return await fn(await clientOf(target));
      } catch (again) {
        throw upstreamFailure(again);
      }
    }
  }

  const timeout = { timeout: options.timeoutMs };

  return {
    assertUrlAllowed(url, wsId) {
      if (url.startsWith(STDIO_PREFIX)) {
        if (!stdioOf(url)?.workspaces.includes(wsId)) throw new McpGatewayError('MCP_SERVER_URL_NOT_ALLOWED');
        return;
      }
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw new McpGatewayError('MCP_SERVER_URL_NOT_ALLOWED');
      }
      if (parsed.username !== '' || parsed.password !== '' || refuseEgressTarget(parsed.protocol, parsed.hostname, parsed.port, compiled)) {
        throw new McpGatewayError('MCP_SERVER_URL_NOT_ALLOWED');
      }
    },

    listTools: (target, maxTools) => withClient(target, (client) => allPages((p) => client.listTools(p, timeout).then((r) => ({ items: r.tools, next: r.nextCursor })), maxTools, true)),

    capabilities: (target) => withClient(target, async (client) => client.getServerCapabilities() ?? {}),

    listPrompts: (target, max) => withClient(target, (client) => allPages((p) => client.listPrompts(p, timeout).then((r) => ({ items: r.prompts, next: r.nextCursor })), max, true)),

    getPrompt: (target, name, args) => withClient(target, (client) => client.getPrompt({ name, arguments: args }, timeout)),

    listResources: (target, max) => withClient(target, (client) => allPages((p) => client.listResources(p, timeout).then((r) => ({ items: r.resources, next: r.nextCursor })), max, false)),

    listResourceTemplates: (target, max) =>
      withClient(target, (client) => allPages((p) => client.listResourceTemplates(p, timeout).then((r) => ({ items: r.resourceTemplates, next: r.nextCursor })), max, false)),

    readResource: (target, uri) => withClient(target, (client) => client.readResource({ uri }, timeout)),

    callTool: (target, name, args) =>
      withClient(target, async (client) => (await client.callTool({ name, arguments: args }, undefined, { timeout: options.timeoutMs })) as CallToolResult),

    async forget(serverId) {
      const held = clients.get(serverId);
      clients.delete(serverId);
      if (held) await held.client.then((c) => c.close()).catch(() => undefined);
    },

    async close() {
      const held = [...clients.values()];
      clients.clear();
      await Promise.all(held.map((h) => h.client.then((c) => c.close()).catch(() => undefined)));
      await agent.close();
    },
  };
}
