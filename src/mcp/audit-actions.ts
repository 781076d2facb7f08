/**
 * The audit actions of the MCP gateway (AUDIT-1, GW-5), in the org's log: upstream servers, reviews
 * of tools and prompts, per-key allowlists, and every tool call, prompt read and resource read
 * (sizes and outcome, never content).
 */
export const MCP_AUDIT_ACTIONS = [
  'mcp.server.set',
  'mcp.server.deleted',
  'mcp.tools.synced',
  'mcp.tool.reviewed',
  'mcp.key_tools.set',
  'mcp.tool.called',
  'mcp.prompt.got',
  'mcp.resource.read',
] as const;
