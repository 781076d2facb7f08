/**
 * An upstream MCP server for tests: the official SDK's low-level `Server` behind its
 * `StreamableHTTPServerTransport` on node:http, on 127.0.0.1 (stateless: a server and transport
 * per request). Tools can be added while it runs (a tool an upstream adds later), and every
 * request's Authorization header is recorded (the credential Gatehouse holds for it).
 */
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CallToolRequestSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ReadResourceRequestSchema,
  type CallToolResult,
  type GetPromptResult,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';

export interface UpstreamTool {
  tool: Tool;
  run: (args: Record<string, unknown>) => CallToolResult | Promise<CallToolResult>;
}

/** Prompts and resources an upstream may offer besides tools (capabilities announced only when given). */
export interface UpstreamContent {
  prompts?: Map<string, { prompt: Prompt; get: (args: Record<string, string>) => GetPromptResult }>;
  /** URI -> resource and its text. */
  resources?: Map<string, { resource: Resource; text: string }>;
  templates?: ResourceTemplate[];
}

export interface McpUpstream {
  /** The MCP endpoint, e.g. http://127.0.0.1:41234/mcp */
  url: string;
  tools: Map<string, UpstreamTool>;
  /** Authorization headers of the requests received, in order. */
  authorizations: (string | undefined)[];
  /** Tool calls received (name and arguments). */
  calls: { name: string; args: Record<string, unknown> }[];
  close: () => Promise<void>;
}

/** A text tool result. */
export const text = (t: string): CallToolResult => ({ content: [{ type: 'text', text: t }] });

/** The `echo` tool: returns its `message` argument. */
export const echoTool: UpstreamTool = {
  tool: { name: 'echo', description: 'Echoes a message.', inputSchema: { type: 'object', properties: { message: { type: 'string', maxLength: 1000 } }, required: ['message'], additionalProperties: false } },
  run: (args) => text(String(args.message)),
};

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length === 0 ? undefined : JSON.parse(Buffer.concat(chunks).toString('utf8'));
}

/** @example const up = await startMcpUpstream([echoTool]) */
export async function startMcpUpstream(initial: readonly UpstreamTool[], name = 'upstream', content: UpstreamContent = {}): Promise<McpUpstream> {
  const tools = new Map(initial.map((t) => [t.tool.name, t]));
  const authorizations: (string | undefined)[] = [];
  const calls: { name: string; args: Record<string, unknown> }[] = [];
  const http = createServer((req, res) => {
    authorizations.push(req.headers.authorization);
    if (req.method !== 'POST') {
      res.writeHead(405, { allow: 'POST' }).end();
      return;
    }
    const server = new Server({ name, version: '1' }, { capabilities: { tools: {}, ...(content.prompts ? { prompts: {} } : {}), ...(content.resources ? { resources: {} } : {}) } });
    const { prompts, resources } = content;
    if (prompts) {
      server.setRequestHandler(ListPromptsRequestSchema, async () => ({ prompts: [...prompts.values()].map((p) => p.prompt) }));
      server.setRequestHandler(GetPromptRequestSchema, async (r) => {
        calls.push({ name: `prompt:${r.params.name}`, args: r.params.arguments ?? {} });
        const p = prompts.get(r.params.name);
        if (!p) throw new Error('no such prompt');
        return p.get(r.params.arguments ?? {});
      });
    }
    if (resources) {
      server.setRequestHandler(ListResourcesRequestSchema, async () => ({ resources: [...resources.values()].map((r) => r.resource) }));
      server.setRequestHandler(ListResourceTemplatesRequestSchema, async () => ({ resourceTemplates: content.templates ?? [] }));
      server.setRequestHandler(ReadResourceRequestSchema, async (r) => {
        calls.push({ name: `resource:${r.params.uri}`, args: {} });
        const found = resources.get(r.params.uri);
        if (!found) throw new Error('no such resource');
        return { contents: [{ uri: r.params.uri, mimeType: 'text/plain', text: found.text }] };
      });
    }
    server.setRequestHandler(ListToolsRequestSchema, async () => ({ tools: [...tools.values()].map((t) => t.tool) }));
    server.setRequestHandler(CallToolRequestSchema, async (r) => {
      const args = r.params.arguments ?? {};
      calls.push({ name: r.params.name, args });
      const t = tools.get(r.params.name);
      return t ? t.run(args) : { content: [{ type: 'text', text: 'no such tool' }], isError: true };
    });
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
    res.on('close', () => {
      void transport.close();
      void server.close();
    });
    void (async () => {
      await server.connect(transport);
      await transport.handleRequest(req, res, await readJson(req));
    })().catch(() => {
      if (!res.headersSent) res.writeHead(500).end();
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`;
  return {
    url,
    tools,
    authorizations,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        http.closeAllConnections();
        http.close(() => resolve());
      }),
  };
}
