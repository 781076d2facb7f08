/**
 * The audit actions of the MCP authorization server (AUDIT-1, GW-5), in the org's log: a member
 * approved an MCP client (the grant's API key, the client's claimed name and redirect host), and a
 * grant ended because its code or refresh token was presented twice or its client revoked it.
 * The key's own creation and revocation are recorded by the gateway as for any key.
 */
export const MCP_AUTH_AUDIT_ACTIONS = [
  'mcp.oauth.granted',
  'mcp.oauth.grant_revoked',
] as const;
