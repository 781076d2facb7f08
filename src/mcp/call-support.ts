/**
 * What every MCP request through Gatehouse shares (tool calls, resource reads, prompt gets): who is
 * calling, the metrics (with bounded label cardinality), the JSON-RPC error shape of a refusal,
 * the result inspectors' combined verdict, and the audit record (sizes and outcome, never content).
 */
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import type { AuditAction, AuditLog } from '../audit/index.ts';
import type { AppError } from '../server/errors.ts';
import type { McpResultContext, McpResultInspector, McpResultVerdict, McpVerdict } from './hooks.ts';

/** Who is calling: from the verified API key (or an MCP access token standing for one). */
export interface McpCaller {
  requestId: string;
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
}

/** Most distinct (workspace, server, tool) series the tool-call counter keeps; later ones count under tool "_other". */
export const MAX_TOOL_SERIES = 5000;

export const byteLength = (value: unknown): number => Buffer.byteLength(JSON.stringify(value ?? null) ?? '', 'utf8');

const INVALID_PARAMS = new Set(['MCP_TOOL_NOT_ALLOWED', 'MCP_PROMPT_NOT_ALLOWED', 'MCP_RESOURCE_NOT_ALLOWED', 'MCP_ARGUMENTS_INVALID']);

/** A JSON-RPC error carrying the Gatehouse code in `data.code`. */
export function rpcError(err: AppError): McpError {
  const invalid = INVALID_PARAMS.has(err.code) || err.status === 400;
  return new McpError(invalid ? ErrorCode.InvalidParams : ErrorCode.InternalError, err.message, { code: err.code });
}

/** A tool error result naming the code: what the client's model sees instead of a withheld result. */
export function toolError(code: string, message: string): CallToolResult {
  return { content: [{ type: 'text', text: `${message} (${code})` }], isError: true };
}

export function createMcpMetrics() {
  const calls = new Counter({
    name: 'gatehouse_mcp_tool_calls_total',
    help: `MCP tool calls through Gatehouse, by workspace, server, tool and outcome (ok, tool_error, blocked, failed, refused). Only tools an admin approved get their own label (a refused unknown name counts under tool ""); past ${MAX_TOOL_SERIES} series per node, new tools count under "_other".`,
    labelNames: ['workspace', 'server', 'tool', 'outcome'] as const,
    registers: [],
  });
  const duration = new Histogram({ name: 'gatehouse_mcp_tool_call_duration_seconds', help: 'Duration of MCP tool calls that reached the upstream, by workspace and server.', labelNames: ['workspace', 'server'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [] });
  const reads = new Counter({ name: 'gatehouse_mcp_reads_total', help: 'MCP resource reads and prompt gets through Gatehouse, by workspace, server, kind (resource, prompt) and outcome.', labelNames: ['workspace', 'server', 'kind', 'outcome'] as const, registers: [] });
  const series = new Set<string>();
  return {
    calls,
    duration,
    reads,
    /** Counts one tool call; the tool label is bounded (approved tools only, at most MAX_TOOL_SERIES series). */
    countCall(labels: { workspace: string; server: string; tool: string; outcome: string }): void {
      const id = `${labels.workspace}\u0000${labels.server}\u0000${labels.tool}`;
      if (!series.has(id)) {
        if (series.size >= MAX_TOOL_SERIES) {
          calls.inc({ ...labels, tool: '_other' });
          return;
        }
        series.add(id);
      }
      calls.inc(labels);
    },
  };
}
export type McpMetrics = ReturnType<typeof createMcpMetrics>;

/**
 * Every inspector's verdict on a result; the worst wins, with every reason. Throws what an
 * inspector threw (the caller withholds the result: fail closed).
 */
export async function inspectResult(inspectors: readonly McpResultInspector[], result: CallToolResult, ctx: McpResultContext): Promise<McpResultVerdict> {
  let worst: McpResultVerdict = { verdict: 'allow' };
  const rank: Record<McpVerdict, number> = { allow: 0, flag: 1, block: 2 };
  const reasons: string[] = [];
  for (const inspector of inspectors) {
    const v = await inspector(result, ctx);
    if (v.verdict !== 'allow') reasons.push(...(v.reasons ?? []));
    if (rank[v.verdict] > rank[worst.verdict]) worst = v;
  }
  return { ...worst, reasons };
}

/** Audits one MCP request (never its content); a failure to audit is logged, the answer stands. */
export async function recordMcpEvent(
  deps: { audit: AuditLog; logger: Logger },
  caller: McpCaller,
  event: { action: AuditAction; targetType: string; target: string },
  data: Record<string, string | number | boolean | null>,
): Promise<void> {
  try {
    await deps.audit.record({ tenantId: caller.tenantId, action: event.action, target: { type: event.targetType, id: event.target.slice(0, 200) }, data: { workspace: caller.workspaceId, apiKey: caller.apiKeyId, ...data } });
  } catch (err) {
    deps.logger.error({ err, requestId: caller.requestId }, 'could not audit an MCP request');
  }
}
