/**
 * No bypass (ABUSE-2): every route an API key can spend through is metered. The test enumerates the
 * live route table: each route with an AI or consume scope must declare its budget categories (the
 * guard table's budget column), and for each declared route and category a budget of 0 refuses the
 * call with the category's code while a budget with room counts what the call used. The key is the
 * owner's, with every scope; a session (any role, an operator's too) cannot call these routes at all.
 * The MCP endpoint is one of them: a tools/call of an approved tool of an in-process upstream; its
 * refusal is the JSON-RPC error (HTTP 200, as MCP clients expect) carrying the category's code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { echoTool, startMcpUpstream, type McpUpstream } from '../support/mcp-upstream.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { putServer, review, sync } from '../mcp/support.ts';

const SPENDING_SCOPES = new Set(['ai:chat', 'ai:embeddings', 'budgets:consume', 'mcp:tools']);
const MCP_ROUTE = 'POST /v1/mcp/:workspace';
/** Routes of a spending scope that cannot spend: the stateless MCP endpoint refuses them (405). */
const NOT_SPENDING = new Set(['GET /v1/mcp/:workspace', 'DELETE /v1/mcp/:workspace']);
const messages = [{ role: 'user', content: 'Say hello to the budget.' }];
/** A valid call of every metered route; a new metered route without one fails the test. */
const SAMPLES: Record<string, Record<string, unknown>> = {
  'POST /v1/chat/completions': { model: 'mock-model', messages, max_tokens: 6 },
  'POST /v1/embeddings': { model: 'mock-embed', input: 'embed this text' },
  'POST /v1/messages': { model: 'mock-model', messages, max_tokens: 6 },
  'POST /v1/budgets/consume': { files: 1, fileBytes: 100, messages: 1 },
  [MCP_ROUTE]: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'docs__echo', arguments: { message: 'metered' } } },
};

let t: GatewayTestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let key: string;
let upstream: McpUpstream;

beforeAll(async () => {
  upstream = await startMcpUpstream([echoTool], 'docs');
  t = await startGatewayApp({
    overrides: {
      'budgets.sweepSeconds': 3600,
      'mcp.upstream.allowedHosts': ['127.0.0.1:*'],
      'mcp.upstream.allowedCidrs': ['127.0.0.1/32'],
      'mcp.upstream.allowInsecureHttp': true,
      'gateway.prices': [
        { model: 'mock-model', inputPerMillion: '1000', outputPerMillion: '2000' },
        { model: 'mock-embed', inputPerMillion: '1000', outputPerMillion: '0' },
      ],
    },
  });
  owner = await signUpUser(t.app, t.mail, 'no-bypass@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'No bypass'));
  await putServer(t, owner, org, ws, 'docs', { url: upstream.url });
  await sync(t, owner, org, ws, 'docs');
  await review(t, owner, org, ws, 'docs', 'echo', 'approved');
  ({ key } = await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'ai:embeddings', 'ai:models', 'budgets:consume', 'mcp:tools'] }));
});

afterAll(async () => {
  await t?.close();
  await upstream?.close();
});

function meteredRoutes() {
  return t.app.gatehouse.routes.filter((r) => r.guard.kind === 'apiKey' && SPENDING_SCOPES.has((r.guard as { scope: string }).scope) && !NOT_SPENDING.has(`${r.method} ${r.url}`));
}

async function setOrgBudget(category: string, hardLimit: number): Promise<string> {
  return expectStatus(await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/budgets`, payload: { category, period: 'day', hardLimit }, headers: owner.auth }), 200).json().id;
}

async function usedOf(id: string): Promise<number> {
  const list = expectStatus(await t.app.inject({ method: 'GET', url: `/v1/orgs/${org}/budgets`, headers: owner.auth }), 200).json();
  return list.budgets.find((b: { id: string }) => b.id === id).used;
}

async function call(method: string, url: string, headers: Record<string, string>) {
  const route = `${method} ${url}`;
  if (route === MCP_ROUTE) return t.app.inject({ method: 'POST', url: url.replace(':workspace', ws), payload: SAMPLES[route], headers: { ...headers, accept: 'application/json, text/event-stream' } });
  return t.app.inject({ method: method as 'POST', url, payload: SAMPLES[route], headers });
}

/** The MCP endpoint answers a refused tools/call with HTTP 200 and a JSON-RPC error. */
function isMcpError(body: string): boolean {
  return (JSON.parse(body) as { error?: unknown }).error !== undefined;
}

describe('every metered route consumes its budgets', () => {
  it('the route table marks every route an API key can spend through with its budget categories', () => {
    const routes = meteredRoutes();
    expect(routes.map((r) => `${r.method} ${r.url}`).sort()).toEqual(Object.keys(SAMPLES).sort());
    for (const r of routes) expect(r.budgets?.length, `${r.method} ${r.url} declares no budget`).toBeGreaterThan(0);
  });

  it('each declared route and category: a budget with room counts the call, a budget of 0 refuses it with the category\'s code', async () => {
    for (const r of meteredRoutes()) {
      for (const category of r.budgets ?? []) {
        const id = await setOrgBudget(category, 1_000_000_000);
        const before = await usedOf(id);
        const ok = await call(r.method, r.url, { authorization: `Bearer ${key}` });
        expect(ok.statusCode, `${r.url} ${ok.body}`).toBe(200);
        if (`${r.method} ${r.url}` === MCP_ROUTE) expect(isMcpError(ok.body), ok.body).toBe(false);
        expect(await usedOf(id), `${r.method} ${r.url} did not count ${category}`).toBeGreaterThan(before);
        await setOrgBudget(category, 0);
        const refused = await call(r.method, r.url, { authorization: `Bearer ${key}` });
        const mcp = `${r.method} ${r.url}` === MCP_ROUTE;
        expect(mcp ? isMcpError(refused.body) : refused.statusCode, `${r.method} ${r.url} passed a ${category} budget of 0`).toBe(mcp ? true : 429);
        // OpenAI's shape carries the code; Anthropic's only the message, which names the category.
        const code = `BUDGET_EXCEEDED_${category.toUpperCase()}`;
        const expected = r.errorFormat?.name === 'anthropic' ? `The ${category} budget` : r.errorFormat && !mcp ? `"code":"${code.toLowerCase()}"` : `"code":"${code}"`;
        expect(refused.body).toContain(expected);
        expectStatus(await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/budgets/${id}`, headers: owner.auth }), 204);
      }
    }
  });

  it('the routes of a spending scope left out of the list spend nothing: the MCP endpoint refuses them', async () => {
    for (const route of NOT_SPENDING) {
      const [method, url] = route.split(' ') as [string, string];
      const res = await t.app.inject({ method: method as 'GET', url: url.replace(':workspace', ws), headers: { authorization: `Bearer ${key}` } });
      expect(res.statusCode, route).toBe(405);
    }
  });

  it('a signed-in owner\'s session cannot call a metered route around its key\'s budgets', async () => {
    for (const r of meteredRoutes()) {
      const res = await call(r.method, r.url, owner.auth);
      expect(res.statusCode, `${r.method} ${r.url}`).toBe(401);
    }
  });
});
