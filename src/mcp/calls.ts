/**
 * One MCP tool call through Gatehouse: find the tool among the key's callable tools (approved,
 * listed, server enabled, on the key's allowlist), check the arguments against the approved input
 * schema, run the steps of other features (budgets), call the upstream, let the result inspectors
 * (the input guard) judge the result and apply the server's result policy, then audit the call
 * (key, server, tool, outcome, duration, sizes: never content) and count it in the metrics.
 *
 * size-exception: createToolCaller is one factory closure of small functions over the call's shared
 * services (128 lines); split by concern is pending; no measured reason to keep it whole.
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';
import { ErrorCode, McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import { Counter, Histogram } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import { McpGatewayError } from './errors.ts';
import type { McpCallOutcome, McpCallStep, McpCallStepResult, McpResultInspector, McpResultVerdict, McpToolCall, McpVerdict } from './hooks.ts';
import type { CatalogTool, McpRegistry } from './registry.ts';
import { upstreamFailure, type McpUpstreams } from './upstream.ts';

/** Who is calling: from the verified API key. */
export interface McpCaller {
  requestId: string;
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
}

export interface ToolCallerDeps {
  registry: McpRegistry;
  upstreams: McpUpstreams;
  audit: AuditLog;
  logger: Logger;
  now: () => number;
  maxResultBytes: number;
  /** Read per call, in run order. */
  steps: () => readonly McpCallStep[];
  inspectors: () => readonly McpResultInspector[];
}

const VALIDATOR_CACHE_MAX = 2000;
const byteLength = (value: unknown): number => Buffer.byteLength(JSON.stringify(value ?? null) ?? '', 'utf8');

/** A JSON-RPC error carrying the Gatehouse code in `data.code`. */
export function rpcError(err: AppError): McpError {
  const invalid = err.code === 'MCP_TOOL_NOT_ALLOWED' || err.code === 'MCP_ARGUMENTS_INVALID' || err.status === 400;
  return new McpError(invalid ? ErrorCode.InvalidParams : ErrorCode.InternalError, err.message, { code: err.code });
}

/** A tool error result naming the code: what the client's model sees instead of a withheld result. */
function toolError(code: string, message: string): CallToolResult {
  return { content: [{ type: 'text', text: `${message} (${code})` }], isError: true };
}

export function createMcpMetrics() {
  return {
    calls: new Counter({ name: 'gatehouse_mcp_tool_calls_total', help: 'MCP tool calls through Gatehouse, by workspace, server, tool and outcome (ok, tool_error, blocked, failed, refused).', labelNames: ['workspace', 'server', 'tool', 'outcome'] as const, registers: [] }),
    duration: new Histogram({ name: 'gatehouse_mcp_tool_call_duration_seconds', help: 'Duration of MCP tool calls that reached the upstream, by workspace and server.', labelNames: ['workspace', 'server'] as const, buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60], registers: [] }),
  };
}
export type McpMetrics = ReturnType<typeof createMcpMetrics>;

/** @example const caller = createToolCaller({ registry, upstreams, audit, logger, now, maxResultBytes, steps, inspectors }); await caller.call(who, name, args, metrics) */
export function createToolCaller(deps: ToolCallerDeps, metrics: McpMetrics) {
  const { registry, upstreams, audit, logger, now } = deps;
  let ajv = new AjvJsonSchemaValidator();
  const validators = new Map<string, (input: unknown) => { valid: boolean; errorMessage?: string | undefined }>();

  /** The tool's argument check, compiled once per definition. `$id` is dropped: one tenant's schema must never be found by another's. */
  function validatorOf(tool: CatalogTool) {
    let v = validators.get(tool.definitionHash);
    if (!v) {
      if (validators.size >= VALIDATOR_CACHE_MAX) {
        validators.clear();
        ajv = new AjvJsonSchemaValidator();
      }
      const { $id: _ignored, ...schema } = tool.definition.inputSchema as Record<string, unknown>;
      try {
        v = ajv.getValidator(schema as never);
      } catch {
        // A schema that cannot be compiled checks nothing: refuse every call (fail closed).
        v = () => ({ valid: false, errorMessage: 'the tool\'s input schema cannot be compiled' });
      }
      validators.set(tool.definitionHash, v);
    }
    return v;
  }

  async function inspect(result: CallToolResult, caller: McpCaller, tool: CatalogTool): Promise<McpResultVerdict> {
    let worst: McpResultVerdict = { verdict: 'allow' };
    const rank: Record<McpVerdict, number> = { allow: 0, flag: 1, block: 2 };
    const reasons: string[] = [];
    for (const inspector of deps.inspectors()) {
      const v = await inspector(result, { requestId: caller.requestId, tenantId: caller.tenantId, workspaceId: caller.workspaceId, apiKeyId: caller.apiKeyId, server: tool.server, tool: tool.name });
      if (v.verdict !== 'allow') reasons.push(...(v.reasons ?? []));
      if (rank[v.verdict] > rank[worst.verdict]) worst = v;
    }
    return { ...worst, reasons };
  }

  async function record(caller: McpCaller, name: string, data: Record<string, string | number | boolean | null>): Promise<void> {
    try {
      await audit.record({ tenantId: caller.tenantId, action: 'mcp.tool.called', target: { type: 'mcp_tool', id: name.slice(0, 200) }, data: { workspace: caller.workspaceId, apiKey: caller.apiKeyId, ...data } });
    } catch (err) {
      logger.error({ err, requestId: caller.requestId }, 'could not audit an MCP tool call');
    }
  }

  return {
    /** The tools this key may see now (approved, listed, enabled, on its allowlist). */
    list: (caller: McpCaller) => registry.catalog(caller.tenantId, caller.workspaceId, caller.apiKeyId),

    /** One tools/call. Refusals throw McpError (JSON-RPC error); upstream failures and withheld results are tool errors. */
    async call(caller: McpCaller, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
      const started = now();
      const argumentBytes = byteLength(args);
      const tool = (await registry.catalog(caller.tenantId, caller.workspaceId, caller.apiKeyId)).find((t) => t.qualifiedName === name);
      const refuse = async (err: AppError, server: string | null): Promise<never> => {
        metrics.calls.inc({ workspace: caller.workspaceId, server: server ?? '', tool: tool?.name ?? '', outcome: 'refused' });
        await record(caller, name, { server, outcome: 'refused', errorCode: err.code, durationMs: now() - started, argumentBytes, resultBytes: 0 });
        throw rpcError(err);
      };
      if (!tool) return refuse(new McpGatewayError('MCP_TOOL_NOT_ALLOWED', `The tool ${name.slice(0, 200)} is not available to this key.`), null);
      const checked = validatorOf(tool)(args);
      if (!checked.valid) return refuse(new McpGatewayError('MCP_ARGUMENTS_INVALID', `The arguments do not match the tool's input schema: ${(checked.errorMessage ?? '').slice(0, 300)}`), tool.server);

      const call: McpToolCall = { ...caller, server: tool.server, tool: tool.name, qualifiedName: name, arguments: args, argumentBytes, startedAt: started };
      const pending: NonNullable<McpCallStepResult['settle']>[] = [];
      const settleAll = async (outcome: McpCallOutcome | undefined): Promise<void> => {
        for (const settle of pending.splice(0)) {
          try {
            await settle(outcome);
          } catch (err) {
            logger.error({ err, requestId: caller.requestId }, 'settling an MCP call step failed');
          }
        }
      };
      try {
        for (const step of deps.steps()) {
          const r = await step.before(call);
          if (r?.settle) pending.push(r.settle);
        }
      } catch (err) {
        await settleAll(undefined);
        if (err instanceof AppError) return refuse(err, tool.server);
        throw err;
      }

      let outcome: McpCallOutcome = { outcome: 'failed', durationMs: 0, resultBytes: 0 };
      let verdict: McpResultVerdict = { verdict: 'allow' };
      let answer: CallToolResult;
      try {
        const target = { id: tool.serverId, url: tool.url, version: tool.version, headers: await registry.openHeaders(caller.tenantId, tool.serverId, tool.headersSealed) };
        const result = await upstreams.callTool(target, tool.name, args);
        const resultBytes = byteLength(result);
        outcome = { outcome: result.isError === true ? 'tool_error' : 'ok', durationMs: now() - started, resultBytes };
        if (resultBytes > deps.maxResultBytes) throw new McpGatewayError('MCP_RESULT_TOO_LARGE');
        try {
          verdict = await inspect(result, caller, tool);
        } catch (err) {
          logger.error({ err, requestId: caller.requestId }, 'an MCP result inspector failed: result withheld');
          throw new McpGatewayError('MCP_GUARD_UNAVAILABLE');
        }
        if (verdict.verdict === 'block' && tool.resultPolicy === 'enforce') {
          outcome = { ...outcome, outcome: 'blocked', errorCode: 'MCP_RESULT_BLOCKED' };
          answer = toolError('MCP_RESULT_BLOCKED', new McpGatewayError('MCP_RESULT_BLOCKED').message);
        } else answer = result;
      } catch (err) {
        const failure = upstreamFailure(err);
        if (failure.status >= 500 && failure.code !== 'MCP_GUARD_UNAVAILABLE') logger.warn({ err, requestId: caller.requestId, server: tool.server, code: failure.code }, 'MCP upstream call failed');
        outcome = { ...outcome, outcome: outcome.resultBytes > 0 ? 'blocked' : 'failed', durationMs: now() - started, errorCode: failure.code };
        answer = toolError(failure.code, failure.message);
      }
      metrics.calls.inc({ workspace: caller.workspaceId, server: tool.server, tool: tool.name, outcome: outcome.outcome });
      metrics.duration.observe({ workspace: caller.workspaceId, server: tool.server }, outcome.durationMs / 1000);
      await record(caller, name, {
        server: tool.server,
        outcome: outcome.outcome,
        errorCode: outcome.errorCode ?? null,
        verdict: verdict.verdict,
        reasons: (verdict.reasons ?? []).join(' ').slice(0, 500) || null,
        resultPolicy: tool.resultPolicy,
        durationMs: outcome.durationMs,
        argumentBytes,
        resultBytes: outcome.resultBytes,
      });
      await settleAll(outcome);
      return answer;
    },
  };
}

export type ToolCaller = ReturnType<typeof createToolCaller>;
