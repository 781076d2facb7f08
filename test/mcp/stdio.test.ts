/**
 * Local (stdio) MCP servers (GW-5): launched as child processes only from operator configuration
 * (`mcp.stdioServers`), referred to by a workspace as `stdio:<name>` and only from a workspace the
 * operator listed; the API can never name a command. Their tools go through the same review,
 * argument check, result guard and audit as HTTP servers, with the official SDK's stdio server
 * (test/support/mcp-stdio-server.ts) as the upstream and its client through Gatehouse.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { auditData, connectClient, review, startMcpApp, sync, type McpTestApp } from './support.ts';

const SCRIPT = fileURLToPath(new URL('../support/mcp-stdio-server.ts', import.meta.url));
const dataDir = mkdtempSync(join(tmpdir(), 'gh-mcp-stdio-'));
const masterKeys = `1:${randomBytes(32).toString('base64')}`;

let t: McpTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let other: { org: string; ws: string };
let client: Client;

const text = (r: unknown): string => ((r as CallToolResult).content[0] as { text: string }).text;
const put = (w: { org: string; ws: string }, name: string, url: string) => t.app.inject({ method: 'PUT', url: `/v1/orgs/${w.org}/workspaces/${w.ws}/mcp/servers/${name}`, payload: { url }, headers: owner.auth });

beforeAll(async () => {
  // First run: the workspaces exist before the operator names one in the configuration.
  const first = await startMcpApp({ dataDir, overrides: { 'keyring.masterKeys': masterKeys, 'rateLimit.enabled': false } });
  owner = await signUpUser(first.app, first.mail, 'mcp-stdio@example.com');
  ({ org, ws } = await createOrgAndWorkspace(first, owner, 'Stdio'));
  other = await createOrgAndWorkspace(first, owner, 'Stdio other');
  await first.close();
  // Process env the child must not see (Gatehouse's own secrets live there).
  process.env.GATEHOUSE_TEST_PARENT_SECRET = 'parent-only';
  t = await startMcpApp({
    dataDir,
    overrides: {
      'keyring.masterKeys': masterKeys,
      'rateLimit.enabled': false,
      'mcp.stdioServers': { local: { command: process.execPath, args: [SCRIPT], env: { VISIBLE_TO_CHILD: '1' }, workspaces: [ws] } },
    },
  });
  expectStatus(await put({ org, ws }, 'local', 'stdio:local'), 200);
  const key = await createApiKey(t, owner, org, ws, { scopes: ['mcp:tools'] });
  client = await connectClient(t.url, ws, key.key);
});

afterAll(async () => {
  delete process.env.GATEHOUSE_TEST_PARENT_SECRET;
  await client?.close();
  await t?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('stdio MCP servers from operator configuration', () => {
  it('refuses a stdio server the operator did not define, or defined for another workspace, or a command from the API', async () => {
    for (const [w, url] of [
      [{ org, ws }, 'stdio:nosuch'],
      [other, 'stdio:local'],
      [{ org, ws }, `stdio:${process.execPath}`],
      [{ org, ws }, 'stdio:local --inspect'],
    ] as const) {
      const res = await put(w, 'smuggled', url);
      expect({ url, status: res.statusCode, code: res.json<{ error: { code: string } }>().error.code }).toEqual({ url, status: 400, code: expect.stringMatching(/^(MCP_SERVER_URL_NOT_ALLOWED|VALIDATION_FAILED)$/) });
    }
    expect((await put(other, 'smuggled', 'stdio:local')).json<{ error: { code: string } }>().error.code).toBe('MCP_SERVER_URL_NOT_ALLOWED');
  });

  it('launches the configured child, records its tools as pending, and calls approved ones through the endpoint', async () => {
    expect(await sync(t, owner, org, ws, 'local')).toEqual({ added: 4, changed: 0, unlisted: 0 });
    expect((await client.listTools()).tools).toEqual([]);
    await review(t, owner, org, ws, 'local', 'echo', 'approved');
    await review(t, owner, org, ws, 'local', 'env', 'approved');
    await review(t, owner, org, ws, 'local', 'poisoned', 'approved');
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['local__echo', 'local__env', 'local__poisoned']);
    expect(text(await client.callTool({ name: 'local__echo', arguments: { message: 'over stdio' } }))).toBe('over stdio');
    const refused = await client.callTool({ name: 'local__pid', arguments: {} }).then(
      () => undefined,
      (e: unknown) => (e instanceof McpError ? (e.data as { code: string }).code : String(e)),
    );
    expect(refused).toBe('MCP_TOOL_NOT_ALLOWED');
    expect((await auditData(t, org, 'mcp.tool.called')).at(-1)?.data).toMatchObject({ outcome: 'refused', errorCode: 'MCP_TOOL_NOT_ALLOWED' });
  });

  it('gives the child only the operator\'s env, never Gatehouse\'s own', async () => {
    expect(text(await client.callTool({ name: 'local__env', arguments: { name: 'VISIBLE_TO_CHILD' } }))).toBe('set');
    expect(text(await client.callTool({ name: 'local__env', arguments: { name: 'GATEHOUSE_TEST_PARENT_SECRET' } }))).toBe('unset');
  });

  it('checks arguments and guards results of a stdio tool like any other', async () => {
    const invalid = await client.callTool({ name: 'local__echo', arguments: { message: 7 } }).then(
      () => undefined,
      (e: unknown) => (e as McpError).data,
    );
    expect(invalid).toEqual({ code: 'MCP_ARGUMENTS_INVALID' });
    const blocked = (await client.callTool({ name: 'local__poisoned', arguments: {} })) as CallToolResult;
    expect(blocked.isError).toBe(true);
    expect(text(blocked)).toContain('MCP_RESULT_BLOCKED');
    expect((await auditData(t, org, 'mcp.tool.called')).at(-1)?.data).toMatchObject({ server: 'local', outcome: 'blocked', verdict: 'block' });
  });
});
