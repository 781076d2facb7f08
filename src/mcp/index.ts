/**
 * The MCP gateway (GW-5): a workspace's upstream MCP servers behind one authenticated MCP endpoint
 * (`/v1/mcp/:workspace`), with approved-tools-only aggregation, per-key allowlists, argument
 * checks against the tool's input schema, rate limits (category `mcp`), steps for budgets, result
 * inspectors for the input guard, an audit event per tool call and metrics per server and tool.
 *
 * Other features take part through two hook points: `MCP_CALL_STEPS` (budgets) and
 * `MCP_RESULT_INSPECTORS` (the input guard); see src/mcp/hooks.ts for their contract.
 */
import { AUDIT } from '../audit/index.ts';
import { MCP_AUDIT_ACTIONS } from './audit-actions.ts';
import { defineModule, hookPoint, moduleRef } from '../server/module.ts';
import type { SealedColumn } from '../server/route.ts';
import { createMcpMetrics } from './call-support.ts';
import { createCatalogCache } from './catalog-cache.ts';
import { createToolCaller, type ToolCaller } from './calls.ts';
import { createContentGateway } from './content.ts';
import type { McpCallStep, McpResultInspector } from './hooks.ts';
import { createMcpRegistry, type McpRegistry } from './registry.ts';
import { advertiseResourceMetadata } from './endpoint-routes.ts';
import { createMcpFeature } from './routes.ts';
import { createMcpUpstreams, type McpUpstreams } from './upstream.ts';

export type { McpCallOutcome, McpCallOutcomeKind, McpCallStep, McpCallStepResult, McpResultContext, McpResultInspector, McpResultVerdict, McpToolCall, McpVerdict } from './hooks.ts';
export { MCP_SCOPE } from './routes.ts';

export interface Mcp {
  registry: McpRegistry;
  upstreams: McpUpstreams;
  tools: ToolCaller;
}

export const MCP = moduleRef<Mcp>('mcp');
/** Steps other features run around every MCP tool call (budgets); ascending `order`. */
export const MCP_CALL_STEPS = hookPoint<McpCallStep>('mcp.callSteps');
/** Inspectors of every tool result before the client sees it (the input guard). */
export const MCP_RESULT_INSPECTORS = hookPoint<McpResultInspector>('mcp.resultInspectors');

/** Upstream MCP server credentials (request headers), sealed with the tenant's data key. */
export const MCP_SEALED_COLUMNS: readonly SealedColumn[] = [{ table: 'mcp_servers', column: 'headers_sealed', idColumn: 'id', tenantColumn: 'tenant_id' }];

export const mcpModule = defineModule({
  ref: MCP,
  dependsOn: [AUDIT],
  sealedColumns: MCP_SEALED_COLUMNS,
  auditActions: MCP_AUDIT_ACTIONS,
  create: async (ctx) => {
    const settings = ctx.config.mcp;
    const audit = ctx.use(AUDIT);
    const upstreams = createMcpUpstreams({ ...settings.upstream, timeoutMs: settings.callTimeoutMs, stdioServers: settings.stdioServers });
    // Every committed registry change drops the workspace's cached catalogs on every node.
    const registry = createMcpRegistry({ db: ctx.db, keyring: ctx.keyring, audit, maxServersPerWorkspace: settings.maxServersPerWorkspace }, async (orgId, wsId) => cache.changed(orgId, wsId));
    const cache = await createCatalogCache({
      kv: ctx.kv,
      logger: ctx.logger,
      now: ctx.now,
      ttlMs: settings.catalogCacheSeconds * 1000,
      load: (caller) => registry.catalog(caller.tenantId, caller.workspaceId, caller.apiKeyId),
    });
    const catalog = cache.catalog;
    const metrics = createMcpMetrics();
    // Complete once every module was created, before the first request: read once then.
    let steps: readonly McpCallStep[] | undefined;
    const tools = createToolCaller(
      {
        registry,
        upstreams,
        audit,
        logger: ctx.logger,
        now: ctx.now,
        maxResultBytes: settings.maxResultBytes,
        steps: () => (steps ??= [...ctx.hooks.list(MCP_CALL_STEPS)].sort((a, b) => a.order - b.order)),
        inspectors: () => ctx.hooks.list(MCP_RESULT_INSPECTORS),
        catalog,
      },
      metrics,
    );
    const content = createContentGateway(
      {
        registry,
        upstreams,
        audit,
        logger: ctx.logger,
        now: ctx.now,
        maxResultBytes: settings.maxResultBytes,
        inspectors: () => ctx.hooks.list(MCP_RESULT_INSPECTORS),
        catalog,
      },
      metrics,
    );
    const feature = createMcpFeature({
      registry,
      upstreams,
      tools,
      content,
      maxToolsPerServer: settings.maxToolsPerServer,
      publicUrl: ctx.config.server.publicUrl,
      bodyLimitBytes: ctx.config.server.bodyLimitBytes,
      now: ctx.now,
      sealedColumns: MCP_SEALED_COLUMNS,
    });
    return {
      api: { registry, upstreams, tools },
      feature,
      metrics: [metrics.calls, metrics.duration, metrics.reads],
      onServer: (app) => advertiseResourceMetadata(app, () => ctx.live.current().server.publicUrl),
      close: async () => {
        await cache.close();
        await upstreams.close();
      },
    };
  },
});
