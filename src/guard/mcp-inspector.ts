/**
 * The input guard on MCP tool results (ABUSE-3 with GW-5): an inspector for the MCP gateway's
 * `MCP_RESULT_INSPECTORS` hook point. It runs the guard's pipeline (rules, decoding, the built-in
 * classifier and the external classifier when the policy asks for it) on the text a tool returned,
 * under the workspace's guard policy: `block` and `redact` give the MCP gateway a block verdict
 * (a result cannot be rewritten safely, so redact withholds it too), `flag` a flag, `off` allows.
 * Audit events and metrics name the rules and score, never the result's content. A policy that
 * cannot be read throws: the MCP gateway withholds the result (fail closed).
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { McpResultInspector, McpResultVerdict } from '../mcp/index.ts';
import type { ExternalClassifier } from './external.ts';
import { createGuard } from './guard.ts';
import { builtinModel } from './model.ts';
import type { GuardStore } from './store.ts';
import type { GuardMetrics } from './step.ts';

export interface McpInspectorDeps {
  store: GuardStore;
  audit: AuditLog;
  logger: Logger;
  external?: ExternalClassifier;
}

type ResultContent = Parameters<McpResultInspector>[0];

/** The texts of a tool result the model will read: text parts, embedded text resources, structured content. */
export function resultTexts(result: ResultContent): string[] {
  const texts: string[] = [];
  for (const part of result.content ?? []) {
    if (part.type === 'text') texts.push(part.text);
    else if (part.type === 'resource' && 'text' in part.resource && typeof part.resource.text === 'string') texts.push(part.resource.text);
  }
  if (result.structuredContent !== undefined) texts.push(JSON.stringify(result.structuredContent));
  return texts.filter((t) => t.length > 0);
}

/** Builds the inspector the guard module adds to MCP_RESULT_INSPECTORS. */
export function createMcpResultInspector(deps: McpInspectorDeps, metrics: GuardMetrics): McpResultInspector {
  const { store, audit } = deps;
  return async (result, ctx): Promise<McpResultVerdict> => {
    const policy = await store.loadPolicy(ctx.tenantId, ctx.workspaceId);
    if (policy.mode === 'off') return { verdict: 'allow' };
    const texts = resultTexts(result);
    if (texts.length === 0) return { verdict: 'allow' };
    const guard = createGuard({ model: builtinModel(), thresholds: { flag: policy.flagThreshold, block: policy.blockThreshold }, disabledRules: policy.disabledRules });
    const useExternal = deps.external && policy.external && !policy.disabledRules.includes('external');
    const found = useExternal && deps.external ? await guard.inspectWithExternal(texts, deps.external) : guard.inspect(texts);
    metrics.verdicts.inc({ verdict: found.action, mode: policy.mode });
    if (found.action === 'allow') return { verdict: 'allow', score: found.score };
    const verdict = found.action === 'block' && policy.mode !== 'flag' ? 'block' : 'flag';
    const data = { source: 'mcp_result', rules: found.fired.join(',') || null, score: Math.round(found.score * 1000) / 1000, verdict, mode: policy.mode, apiKeyId: ctx.apiKeyId, server: ctx.server.slice(0, 200), tool: ctx.tool.slice(0, 200) };
    // A verdict that cannot be audited is a failure to check: throwing withholds the result.
    await audit.record({ tenantId: ctx.tenantId, action: verdict === 'block' ? 'guard.blocked' : 'guard.flagged', target: { type: 'workspace', id: ctx.workspaceId }, data });
    if (verdict === 'block') metrics.refusals.inc({ reason: 'blocked' });
    return { verdict, reasons: found.fired.map((r) => `guard:${r}`), score: found.score };
  };
}
