/**
 * Budgets of MCP tool calls (ABUSE-2 with GW-5): a step for the MCP gateway's `MCP_CALL_STEPS`
 * hook point that reserves one `tool_calls` before the call reaches the upstream (a refusal is the
 * JSON-RPC error carrying BUDGET_EXCEEDED_TOOL_CALLS) and settles it: one when the call reached the
 * upstream, whatever it answered; zero (refunded) when a later step refused the call.
 */
import type { McpCallStep } from '../mcp/index.ts';
import type { BudgetEngine } from './engine.ts';

/** Order 200, as on AI calls: after the checks that refuse for free. */
export function createMcpBudgetStep(engine: Pick<BudgetEngine, 'reserve'>): McpCallStep {
  return {
    name: 'budgets',
    order: 200,
    before: async (call) => {
      const reservation = await engine.reserve({ orgId: call.tenantId, workspaceId: call.workspaceId, apiKeyId: call.apiKeyId, amounts: { tool_calls: 1 }, requestId: call.requestId });
      return { settle: (outcome) => reservation.settle(outcome ? { tool_calls: 1 } : undefined) };
    },
  };
}
