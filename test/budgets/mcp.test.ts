/**
 * Budgets of MCP tool calls (ABUSE-2 with GW-5), through the official MCP SDK client and an
 * in-process upstream: a workspace budget of N tool calls lets exactly N of 8 concurrent calls
 * reach the upstream and refuses the rest with the JSON-RPC error carrying
 * BUDGET_EXCEEDED_TOOL_CALLS; a call a later step refuses is refunded; refusals before the steps
 * (a tool not approved) count nothing.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_MODULES } from '../../src/features.ts';
import { MCP_CALL_STEPS } from '../../src/mcp/index.ts';
import { AppError } from '../../src/server/errors.ts';
import { defineModule, hook, moduleRef } from '../../src/server/module.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus } from '../support/gateway.ts';
import { echoTool, startMcpUpstream, text, type McpUpstream } from '../support/mcp-upstream.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { connectClient, putServer, review, startMcpApp, sync, type McpTestApp } from '../mcp/support.ts';

const LIMIT = 3;
const CONCURRENT = 8;

/** A step after budgets (order 300) that refuses calls of the `refused_later` tool. */
const laterStepModule = defineModule({
  ref: moduleRef<undefined>('test-mcp-later-step'),
  dependsOn: [],
  create: () => ({
    api: undefined,
    hooks: [
      hook(MCP_CALL_STEPS, {
        name: 'test-later',
        order: 300,
        before: async (call) => {
          if (call.tool === 'refused_later') throw new AppError('FORBIDDEN', 'refused by a later step');
        },
      }),
    ],
  }),
});

let t: McpTestApp;
let upstream: McpUpstream;
let owner: SignedInUser;
let org: string;
let ws: string;
let client: Client;

async function setBudget(hardLimit: number): Promise<string> {
  return expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category: 'tool_calls', period: 'day', hardLimit, workspaceId: ws }, headers: owner.auth }), 200).json().id;
}
async function usedOf(id: string): Promise<number> {
  const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
  return list.budgets.find((b: { id: string }) => b.id === id).used;
}

beforeAll(async () => {
  upstream = await startMcpUpstream([echoTool, { tool: { name: 'refused_later', inputSchema: { type: 'object' } }, run: () => text('should not run') }, { tool: { name: 'pending', inputSchema: { type: 'object' } }, run: () => text('pending') }], 'docs');
  t = await startMcpApp({ modules: [...FEATURE_MODULES, laterStepModule], overrides: { 'rateLimit.enabled': false, 'budgets.sweepSeconds': 3600 } });
  owner = await signUpUser(t.app, t.mail, 'mcp-budget-owner@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Mcp budget'));
  await putServer(t, owner, org, ws, 'docs', { url: upstream.url });
  await sync(t, owner, org, ws, 'docs');
  await review(t, owner, org, ws, 'docs', 'echo', 'approved');
  await review(t, owner, org, ws, 'docs', 'refused_later', 'approved');
  const key = await createApiKey(t, owner, org, ws, { scopes: ['mcp:tools'] });
  client = await connectClient(t.url, ws, key.key);
});

afterAll(async () => {
  await client?.close();
  await t?.close();
  await upstream?.close();
});

describe('tool_calls budgets on the MCP gateway', () => {
  it('a budget of 3 tool calls lets exactly 3 of 8 concurrent calls through, then the MCP error BUDGET_EXCEEDED_TOOL_CALLS', async () => {
    const id = await setBudget(LIMIT);
    const before = upstream.calls.length;
    const results = await Promise.allSettled(Array.from({ length: CONCURRENT }, (_, i) => client.callTool({ name: 'docs__echo', arguments: { message: `call ${i}` } })));
    const passed = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(passed).toHaveLength(LIMIT);
    expect(refused).toHaveLength(CONCURRENT - LIMIT);
    for (const r of refused) {
      expect(r.reason).toBeInstanceOf(McpError);
      expect((r.reason as McpError).data).toEqual({ code: 'BUDGET_EXCEEDED_TOOL_CALLS' });
    }
    expect(upstream.calls.length - before).toBe(LIMIT);
    expect(await usedOf(id)).toBe(LIMIT);
    await expect(client.callTool({ name: 'docs__echo', arguments: { message: 'one more' } })).rejects.toBeInstanceOf(McpError);
    expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/budgets/${id}`, headers: owner.auth }), 204);
  });

  it('refunds the reservation of a call a later step refused, and counts nothing for a tool that is not approved', async () => {
    const id = await setBudget(10);
    const base = await usedOf(id);
    const before = upstream.calls.length;
    await expect(client.callTool({ name: 'docs__refused_later', arguments: {} })).rejects.toMatchObject({ data: { code: 'FORBIDDEN' } });
    await expect(client.callTool({ name: 'docs__pending', arguments: {} })).rejects.toMatchObject({ data: { code: 'MCP_TOOL_NOT_ALLOWED' } });
    expect(upstream.calls.length).toBe(before);
    expect(await usedOf(id)).toBe(base);
    await client.callTool({ name: 'docs__echo', arguments: { message: 'counted' } });
    expect(await usedOf(id)).toBe(base + 1);
  });
});
