/**
 * The MCP endpoint on two nodes sharing PostgreSQL and Redis: a key revoked on one node is refused
 * by the other mid-session (its cached key evicted through kv), and a key's rate limit holds
 * exactly across both nodes under concurrent tool calls. An approval made on one node applies on
 * the other at once (policy is read from the database per request).
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { McpUpstream } from '../support/mcp-upstream.ts';
import { twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import type { SignedInUser } from '../support/users.ts';
import { connectClient, startMcpTwoNodes, type McpTwoNodes } from './support.ts';

(skip ? describe.skip : describe)(`MCP on two nodes${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes;
  let up: McpUpstream;
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  let urlA: string;
  let urlB: string;

  const inject = (method: 'GET' | 'PUT' | 'POST' | 'DELETE', url: string, payload?: object) => nodes.a.app.inject({ method, url, headers: owner.auth, ...(payload ? { payload } : {}) });
  async function createKey(body: object): Promise<{ key: string; id: string }> {
    const res = await inject('POST', `/v1/orgs/${org}/workspaces/${ws}/api-keys`, { name: 'k', scopes: ['mcp:tools'], ...body });
    expect(res.statusCode).toBe(201);
    const created = res.json<{ key: string; apiKey: { id: string } }>();
    return { key: created.key, id: created.apiKey.id };
  }

  let rig: McpTwoNodes;

  beforeAll(async () => {
    rig = await startMcpTwoNodes('mcp-two-nodes@example.com');
    ({ nodes, up, owner, org, ws, urlA, urlB } = rig);
  });

  afterAll(async () => rig?.close());

  it('applies an approval made on node A at once on node B', async () => {
    const { key } = await createKey({});
    const onB: Client = await connectClient(urlB, ws, key);
    try {
      expect((await onB.listTools()).tools).toEqual([]);
      expect((await inject('PUT', `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/up/tools/echo`, { status: 'approved' })).statusCode).toBe(204);
      expect((await onB.listTools()).tools.map((t) => t.name)).toEqual(['up__echo']);
    } finally {
      await onB.close();
    }
  });

  it('refuses on node B, mid-session, a key revoked on node A', async () => {
    const { key, id } = await createKey({});
    const onB = await connectClient(urlB, ws, key);
    try {
      await onB.callTool({ name: 'up__echo', arguments: { message: 'cached on B' } });
      expect((await inject('DELETE', `/v1/orgs/${org}/workspaces/${ws}/api-keys/${id}`)).statusCode).toBe(204);
      let refusedAfter = -1;
      for (let attempt = 0; attempt < 50 && refusedAfter < 0; attempt++) {
        const ok = await onB.callTool({ name: 'up__echo', arguments: { message: 'after' } }).then(
          () => true,
          () => false,
        );
        if (!ok) refusedAfter = attempt;
        else await new Promise((r) => setTimeout(r, 20));
      }
      // The eviction arrives through Redis pub/sub; the 3600 s cache could not explain a refusal.
      expect(refusedAfter).toBeGreaterThanOrEqual(0);
      expect(up.calls.filter((c) => c.args.message === 'after').length).toBe(refusedAfter);
    } finally {
      await onB.close();
    }
  });

  it("holds a key's rate limit exactly across both nodes under concurrent tool calls", async () => {
    const limit = 12;
    const { key } = await createKey({ rateLimitPerMinute: limit });
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'up__echo', arguments: { message: 'burst' } } });
    const headers = { authorization: `Bearer ${key}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' };
    const before = up.calls.length;
    const statuses = await Promise.all(Array.from({ length: 3 * limit }, (_v, i) => fetch(`${i % 2 === 0 ? urlA : urlB}/v1/mcp/${ws}`, { method: 'POST', headers, body }).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200).length).toBe(limit);
    expect(statuses.filter((s) => s === 429).length).toBe(2 * limit);
    expect(up.calls.length - before).toBe(limit);
  });
});
