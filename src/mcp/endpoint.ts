/**
 * Gatehouse as an MCP server: `POST /v1/mcp/:workspace`, Streamable HTTP in the SDK's stateless
 * mode. Every POST carries the API key and passes the apiKey guard (so a revoked key is refused
 * on its next message, on every node, as soon as the revocation's eviction arrives), and gets a
 * fresh SDK `Server` and `WebStandardStreamableHTTPServerTransport` with JSON responses: nothing of
 * an MCP "session" lives on a node, so any node answers any message and there is no session state
 * to steal or to expire. There is no server-sent event stream (GET answers 405).
 *
 * Why not hijack the reply for the Node transport: the web-standard transport returns a Response
 * that is sent through Fastify, so security headers, rate-limit headers, the request log and the
 * error format stay those of every other route.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { WebStandardStreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/webStandardStreamableHttp.js';
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { McpCaller, ToolCaller } from './calls.ts';
import type { ContentGateway } from './content.ts';
import type { CatalogTool } from './registry-model.ts';

/** Request headers the SDK transport reads; nothing else (no credentials) reaches it. */
const PASSED_HEADERS = ['accept', 'content-type', 'mcp-protocol-version', 'mcp-session-id', 'last-event-id'] as const;

const INSTRUCTIONS = 'Tools and prompts of this workspace\'s MCP servers, through Gatehouse: names are <server>__<name>; only what an admin approved is listed. Resources are gatehouse://<server>/<uri>.';

function toolOf(t: CatalogTool): Tool {
  const d = t.definition;
  return {
    name: t.qualifiedName,
    ...(d.title !== undefined ? { title: d.title } : {}),
    ...(d.description !== undefined ? { description: d.description } : {}),
    inputSchema: d.inputSchema,
    ...(d.outputSchema !== undefined ? { outputSchema: d.outputSchema } : {}),
    ...(d.annotations !== undefined ? { annotations: d.annotations } : {}),
  };
}

/**
 * Answers one POSTed JSON-RPC message (or batch) for `caller`, sending the SDK's response through `reply`.
 * @example return serveMcpMessage(tools, caller, request, reply, body)
 */
export async function serveMcpMessage(gateway: { tools: ToolCaller; content: ContentGateway }, caller: McpCaller, request: FastifyRequest, reply: FastifyReply, body: unknown): Promise<string | null> {
  const { tools, content } = gateway;
  const server = new Server({ name: 'gatehouse', version: '1' }, { capabilities: { tools: {}, prompts: {}, resources: {} }, instructions: INSTRUCTIONS });
  server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: (await tools.list(caller)).map(toolOf) }));
  server.setRequestHandler(CallToolRequestSchema, async (req) => tools.call(caller, req.params.name, req.params.arguments ?? {}));
  server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: await content.listPrompts(caller) }));
  server.setRequestHandler(GetPromptRequestSchema, async (req) => content.getPrompt(caller, req.params.name, req.params.arguments ?? {}));
  server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: await content.listResources(caller) }));
  server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: await content.listResourceTemplates(caller) }));
  server.setRequestHandler(ReadResourceRequestSchema, async (req) => content.readResource(caller, req.params.uri));
  const transport = new WebStandardStreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  try {
    const headers = new Headers();
    for (const name of PASSED_HEADERS) {
      const value = request.headers[name];
      if (typeof value === 'string') headers.set(name, value);
    }
    const res = await transport.handleRequest(new Request(`http://gatehouse.invalid${request.url}`, { method: 'POST', headers }), { parsedBody: body });
    void reply.code(res.status);
    res.headers.forEach((value, name) => {
      if (name === 'content-type' || name === 'allow') void reply.header(name, value);
    });
    const text = await res.text();
    return text === '' ? null : text;
  } finally {
    await server.close().catch(() => undefined);
  }
}
