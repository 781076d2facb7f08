/**
 * The MCP registry's data model: the views admins see, the catalog rows the endpoint reads, the
 * server row, and the canonical hash of a tool definition (a changed hash sends the tool back to
 * review). No database access here: src/mcp/registry-servers.ts and registry-tools.ts hold it.
 */
import { createHash } from 'node:crypto';
import type { Prompt, Tool } from '@modelcontextprotocol/sdk/types.js';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Db } from '../store/db-types.ts';

export const SEALED = { table: 'mcp_servers', column: 'headers_sealed' } as const;
/** Between a server's name and its tool's name in what clients see. */
export const NAMESPACE_SEPARATOR = '__';

export type ToolStatus = 'pending' | 'approved' | 'denied';
export type ResultPolicy = 'enforce' | 'monitor';
/** What an admin reviews item by item. */
export type ReviewedKind = 'tool' | 'prompt';

export interface ServerInput {
  url: string;
  headers?: Record<string, string> | undefined;
  enabled?: boolean | undefined;
  resultPolicy?: ResultPolicy | undefined;
  /** Expose the server's resources (off by default). */
  resources?: boolean | undefined;
}

export interface ServerView {
  name: string;
  url: string;
  headerNames: string[];
  enabled: boolean;
  resultPolicy: ResultPolicy;
  resources: boolean;
  lastSyncedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface ToolView {
  server: string;
  name: string;
  /** `<server>__<tool>`: the name MCP clients see. */
  qualifiedName: string;
  description: string | null;
  /** What an approval approves (the hashed definition): a tool's input schema, a prompt's arguments... */
  definition: Record<string, unknown>;
  status: ToolStatus;
  listed: boolean;
  firstSeenAt: string;
  reviewedAt: string | null;
}

/** What a tool's definition holds (what clients are shown once it is approved). */
export interface ToolDefinition {
  title?: string;
  description?: string;
  inputSchema: Tool['inputSchema'];
  outputSchema?: Tool['outputSchema'];
  annotations?: Tool['annotations'];
}

/** What a prompt's definition holds (what clients are shown once it is approved). */
export interface PromptDefinition {
  title?: string;
  description?: string;
  arguments?: { name: string; description?: string; required?: boolean }[];
}

export function promptDefinitionOf(p: Prompt): PromptDefinition {
  return {
    ...(p.title !== undefined ? { title: p.title } : {}),
    ...(p.description !== undefined ? { description: p.description } : {}),
    ...(p.arguments !== undefined ? { arguments: p.arguments.map((a) => ({ name: a.name, ...(a.description !== undefined ? { description: a.description } : {}), ...(a.required !== undefined ? { required: a.required } : {}) })) } : {}),
  };
}

/** An approved prompt a key may get, with its server (connection data as in CatalogTool). */
export interface CatalogPrompt extends Omit<CatalogTool, 'definition'> {
  definition: PromptDefinition;
}

/** The entry of a key's allowlist that lets it use a server's resources: `<server>:resources`. */
export const RESOURCES_ENTRY = ':resources';

/** What one key may see and use now. */
export interface KeyCatalog {
  tools: CatalogTool[];
  prompts: CatalogPrompt[];
  resourceServers: ResourceServer[];
}

/** A server whose resources a key may list and read. */
export interface ResourceServer {
  serverId: string;
  server: string;
  resultPolicy: ResultPolicy;
  url: string;
  version: string;
  headersSealed: string | null;
}

/** An approved tool a key may call, with its server. */
export interface CatalogTool {
  serverId: string;
  server: string;
  name: string;
  qualifiedName: string;
  definition: ToolDefinition;
  definitionHash: string;
  resultPolicy: ResultPolicy;
  /** The server's connection data (headers still sealed), read with the tool. */
  url: string;
  version: string;
  headersSealed: string | null;
}

export interface ServerRow {
  id: string;
  name: string;
  url: string;
  headers_sealed: string | null;
  header_names: string[];
  enabled: boolean;
  result_policy: ResultPolicy;
  resources: boolean;
  last_synced_at: Date | string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

export const SERVER_COLUMNS = 'id, name, url, headers_sealed, header_names, enabled, result_policy, resources, last_synced_at, created_at, updated_at';
export const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();

export const serverView = (r: ServerRow): ServerView => ({
  name: r.name,
  url: r.url,
  headerNames: r.header_names,
  enabled: r.enabled,
  resultPolicy: r.result_policy,
  resources: r.resources,
  lastSyncedAt: r.last_synced_at === null ? null : iso(r.last_synced_at),
  createdAt: iso(r.created_at),
  updatedAt: iso(r.updated_at),
});

/** JSON with object keys sorted: the text a definition's hash is taken over. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function definitionOf(tool: Tool): ToolDefinition {
  return {
    ...(tool.title !== undefined ? { title: tool.title } : {}),
    ...(tool.description !== undefined ? { description: tool.description } : {}),
    inputSchema: tool.inputSchema,
    ...(tool.outputSchema !== undefined ? { outputSchema: tool.outputSchema } : {}),
    ...(tool.annotations !== undefined ? { annotations: tool.annotations } : {}),
  };
}

export const hashOf = (definition: object): string => createHash('sha256').update(canonicalJson(definition)).digest('hex');

export interface McpRegistryDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  maxServersPerWorkspace: number;
}

