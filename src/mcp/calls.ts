/**
 * One MCP tool call through Gatehouse: find the tool among the key's callable tools (approved,
 * listed, server enabled, on the key's allowlist), check the arguments against the approved input
 * schema, run the steps of other features (budgets), call the upstream, let the result inspectors
 * (the input guard) judge the result and apply the server's result policy, then audit the call
 * (key, server, tool, outcome, duration, sizes: never content) and count it in the metrics.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import { byteLength, inspectResult, recordMcpEvent, rpcError, toolError, type McpCaller, type McpMetrics } from './call-support.ts';
import { McpGatewayError, resultWithheld } from './errors.ts';
import type { McpCallOutcome, McpCallStep, McpCallStepResult, McpResultInspector, McpResultVerdict, McpToolCall } from './hooks.ts';
import type { CatalogTool, KeyCatalog } from './registry-model.ts';
import type { McpRegistry } from './registry.ts';
import { createSchemaValidators } from './schema-validators.ts';
import { upstreamFailure, type McpUpstreams } from './upstream.ts';

export type { McpCaller } from './call-support.ts';

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
  /** What a key may use now (the registry's catalog, or a cache of it). */
  catalog: (caller: McpCaller) => Promise<KeyCatalog>;
}

type Settle = NonNullable<McpCallStepResult['settle']>;

/** Runs every step's `before`; on a refusal settles those that ran (with undefined) and rethrows. */
async function runSteps(steps: readonly McpCallStep[], call: McpToolCall, settleAll: (pending: Settle[], outcome: McpCallOutcome | undefined) => Promise<void>): Promise<Settle[]> {
  const pending: Settle[] = [];
  try {
    for (const step of steps) {
      const r = await step.before(call);
      if (r?.settle) pending.push(r.settle);
    }
  } catch (err) {
    await settleAll(pending, undefined);
    throw err;
  }
  return pending;
}

/** @example const caller = createToolCaller({ registry, upstreams, audit, logger, now, maxResultBytes, steps, inspectors, catalog }, metrics); await caller.call(who, name, args) */
export function createToolCaller(deps: ToolCallerDeps, metrics: McpMetrics) {
  const { registry, upstreams, logger, now } = deps;
  const validators = createSchemaValidators();

  const record = (caller: McpCaller, name: string, data: Record<string, string | number | boolean | null>) =>
    recordMcpEvent(deps, caller, { action: 'mcp.tool.called', targetType: 'mcp_tool', target: name }, data);

  async function settleAll(pending: Settle[], outcome: McpCallOutcome | undefined): Promise<void> {
    for (const settle of pending.splice(0)) {
      try {
        await settle(outcome);
      } catch (err) {
        logger.error({ err }, 'settling an MCP call step failed');
      }
    }
  }

  /** Calls the upstream and judges its result; never throws (failures become tool errors). */
  async function forward(caller: McpCaller, tool: CatalogTool, args: Record<string, unknown>, started: number): Promise<{ outcome: McpCallOutcome; verdict: McpResultVerdict; answer: CallToolResult }> {
    let outcome: McpCallOutcome = { outcome: 'failed', durationMs: 0, resultBytes: 0 };
    let verdict: McpResultVerdict = { verdict: 'allow' };
    try {
      const target = { id: tool.serverId, url: tool.url, version: tool.version, headers: await registry.openHeaders(caller.tenantId, tool.serverId, tool.headersSealed) };
      const result = await upstreams.callTool(target, tool.name, args);
      const resultBytes = byteLength(result);
      outcome = { outcome: result.isError === true ? 'tool_error' : 'ok', durationMs: now() - started, resultBytes };
      if (resultBytes > deps.maxResultBytes) throw resultWithheld('MCP_RESULT_TOO_LARGE', 'tool');
      try {
        verdict = await inspectResult(deps.inspectors(), result, { requestId: caller.requestId, tenantId: caller.tenantId, workspaceId: caller.workspaceId, apiKeyId: caller.apiKeyId, server: tool.server, tool: tool.name });
      } catch (err) {
        logger.error({ err, requestId: caller.requestId }, 'an MCP result inspector failed: result withheld');
        throw resultWithheld('MCP_GUARD_UNAVAILABLE', 'tool');
      }
      if (verdict.verdict === 'block' && tool.resultPolicy === 'enforce') {
        outcome = { ...outcome, outcome: 'blocked', errorCode: 'MCP_RESULT_BLOCKED' };
        return { outcome, verdict, answer: toolError('MCP_RESULT_BLOCKED', resultWithheld('MCP_RESULT_BLOCKED', 'tool').message) };
      }
      return { outcome, verdict, answer: result };
    } catch (err) {
      const failure = upstreamFailure(err);
      if (failure.status >= 500 && failure.code !== 'MCP_GUARD_UNAVAILABLE') logger.warn({ err, requestId: caller.requestId, server: tool.server, code: failure.code }, 'MCP upstream call failed');
      outcome = { ...outcome, outcome: outcome.resultBytes > 0 ? 'blocked' : 'failed', durationMs: now() - started, errorCode: failure.code };
      return { outcome, verdict, answer: toolError(failure.code, failure.message) };
    }
  }

  return {
    /** The tools this key may see now (approved, listed, enabled, on its allowlist). */
    list: async (caller: McpCaller) => (await deps.catalog(caller)).tools,

    /** One tools/call. Refusals throw McpError (JSON-RPC error); upstream failures and withheld results are tool errors. */
    async call(caller: McpCaller, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
      const started = now();
      const argumentBytes = byteLength(args);
      const tool = (await deps.catalog(caller)).tools.find((t) => t.qualifiedName === name);
      const refuse = async (err: AppError, server: string | null): Promise<never> => {
        metrics.countCall({ workspace: caller.workspaceId, server: server ?? '', tool: tool?.name ?? '', outcome: 'refused' });
        await record(caller, name, { server, outcome: 'refused', errorCode: err.code, durationMs: now() - started, argumentBytes, resultBytes: 0 });
        throw rpcError(err);
      };
      if (!tool) return refuse(new McpGatewayError('MCP_TOOL_NOT_ALLOWED', `The tool ${name.slice(0, 200)} is not available to this key.`), null);
      const checked = validators.check(tool.definitionHash, tool.definition.inputSchema, args);
      if (!checked.valid) return refuse(new McpGatewayError('MCP_ARGUMENTS_INVALID', `The arguments do not match the tool's input schema: ${(checked.errorMessage ?? '').slice(0, 300)}`), tool.server);

      const call: McpToolCall = { ...caller, server: tool.server, tool: tool.name, qualifiedName: name, arguments: args, argumentBytes, startedAt: started };
      let pending: Settle[];
      try {
        pending = await runSteps(deps.steps(), call, settleAll);
      } catch (err) {
        if (err instanceof AppError) return refuse(err, tool.server);
        throw err;
      }
      const { outcome, verdict, answer } = await forward(caller, tool, args, started);
      metrics.countCall({ workspace: caller.workspaceId, server: tool.server, tool: tool.name, outcome: outcome.outcome });
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
      await settleAll(pending, outcome);
      return answer;
    },
  };
}

export type ToolCaller = ReturnType<typeof createToolCaller>;
