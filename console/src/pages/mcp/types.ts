/** The MCP API's shapes the page uses (from the generated OpenAPI types). */
import type { paths } from '../../api/schema.d.ts';

type Json<T> = T extends { responses: { 200: { content: { 'application/json': infer B } } } } ? B : never;

export type McpServer = Json<paths['/v1/orgs/{org}/workspaces/{ws}/mcp/servers']['get']>['servers'][number];
export type McpItem = Json<paths['/v1/orgs/{org}/workspaces/{ws}/mcp/tools']['get']>['tools'][number];
export type SyncCounts = Json<paths['/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}/sync']['post']>;
