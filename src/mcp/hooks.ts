/**
 * The places where other features take part in an MCP tool call without the MCP gateway knowing
 * them (offered as hook points in src/mcp/index.ts):
 *
 * - `MCP_CALL_STEPS` (budgets, rate or cost controls): `before` runs once the tool was found on the
 *   key's allowlist and its arguments passed the input schema, before anything reaches the
 *   upstream. Throwing refuses the call (an `AppError` keeps its code, sent as the JSON-RPC
 *   error's `data.code`); no later step runs then. `settle` is called exactly once for every step
 *   whose `before` returned one: with the outcome when the call reached the upstream, with
 *   `undefined` when a later step refused it. Steps run in ascending `order`.
 * - `MCP_RESULT_INSPECTORS` (the input guard): every inspector sees every tool result before the
 *   client does and returns a verdict. `block` withholds the result (a tool error to the client)
 *   when the server's result policy is `enforce`, and is only audited under `monitor`; `flag` is
 *   audited. An inspector that throws withholds the result under both policies (fail closed).
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';

/** One tool call, as steps see it. Arguments are the validated ones; steps must not log them. */
export interface McpToolCall {
  requestId: string;
  /** The org. */
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
  server: string;
  tool: string;
  /** `<server>__<tool>`. */
  qualifiedName: string;
  arguments: Readonly<Record<string, unknown>>;
  /** Size of the arguments as JSON. */
  argumentBytes: number;
  /** ms. */
  startedAt: number;
}

/** How a call ended: `ok` (a result), `tool_error` (the upstream's own isError result), `blocked` (withheld by an inspector), `failed` (upstream unreachable or broken). */
export type McpCallOutcomeKind = 'ok' | 'tool_error' | 'blocked' | 'failed';

export interface McpCallOutcome {
  outcome: McpCallOutcomeKind;
  durationMs: number;
  /** Size of the upstream's result as JSON (0 when there was none). */
  resultBytes: number;
  errorCode?: string;
}

export interface McpCallStepResult {
  settle?: (outcome: McpCallOutcome | undefined) => Promise<void> | void;
}

export interface McpCallStep {
  /** A short name for logs. */
  name: string;
  /** Lower runs first; budgets use 200. */
  order: number;
  before: (call: McpToolCall) => Promise<McpCallStepResult | undefined | void>;
}

export type McpVerdict = 'allow' | 'flag' | 'block';

export interface McpResultVerdict {
  verdict: McpVerdict;
  /** Rule names or short reasons, for the audit event (never content). */
  reasons?: readonly string[];
  score?: number;
}

/** What an inspector knows of the call whose result it inspects. */
export interface McpResultContext {
  requestId: string;
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
  server: string;
  tool: string;
}

export type McpResultInspector = (result: CallToolResult, ctx: McpResultContext) => Promise<McpResultVerdict>;
