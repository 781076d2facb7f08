/**
 * MCP gateway benchmark (`npm run bench:mcp`), loopback only, bounded by counts.
 *
 * Tool calls per second from the official MCP SDK client (`callTool`, 16 in flight) to an upstream
 * MCP server (the SDK's `StreamableHTTPServerTransport` on node:http, stateless, JSON responses,
 * in a worker thread of its own), measured in the same run:
 * - directly: client -> upstream;
 * - through Gatehouse: client -> `/v1/mcp/:workspace` -> upstream, with everything on as in
 *   production: the API-key guard, the rate limit (a limit never reached, counted on every call),
 *   the key's tool allowlist and the approval read from the database, the argument check against
 *   the input schema, a result inspector, an audit event per call and the metrics. Embedded
 *   storage (PGlite in memory, memory kv); Gatehouse and the client share the main thread.
 * - through Gatehouse with an OAuth access token (client_credentials from the same key): the same
 *   path plus the token's checks (signature, audience, revocation by id) instead of the key's hash.
 * BENCH_CALLS (default 2000) calls per slice, BENCH_ROUNDS (default 3) slices per target taken in
 * turn after a warm-up of 200 calls each; calls/s is the median slice. Exits non-zero when a call failed.
 */
import { Worker, isMainThread, parentPort } from 'node:worker_threads';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const CALLS = Number(process.env.BENCH_CALLS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const IN_FLIGHT = 16;

async function upstreamWorker(): Promise<void> {
  const { startMcpUpstream, echoTool } = await import('../test/support/mcp-upstream.ts');
  const up = await startMcpUpstream([echoTool], 'bench');
  parentPort?.postMessage(up.url);
}

async function connect(url: string, headers: Record<string, string>): Promise<Client> {
  const client = new Client({ name: 'bench', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return client;
}

/** Calls/s of `calls` echo calls, IN_FLIGHT at a time. */
async function run(client: Client, tool: string, calls: number): Promise<number> {
  let next = 0;
  let failed = 0;
  const reasons = new Set<string>();
  const started = performance.now();
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < calls) {
        next++;
        const r = await client.callTool({ name: tool, arguments: { message: 'bench' } });
        if (r.isError) {
          failed++;
          reasons.add(JSON.stringify(r.content).slice(0, 200));
        }
      }
    }),
  );
  if (failed > 0) throw new Error(`${failed} calls failed: ${[...reasons].join(' | ')}`);
  return calls / ((performance.now() - started) / 1000);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

async function main(): Promise<void> {
  console.log(`load average at start: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  const worker = new Worker(fileURLToPath(import.meta.url));
  const upstreamUrl = await new Promise<string>((resolve) => worker.once('message', resolve));
  const { FEATURE_MODULES } = await import('../src/features.ts');
  const { MCP_RESULT_INSPECTORS } = await import('../src/mcp/index.ts');
  const { defineModule, hook, moduleRef } = await import('../src/server/module.ts');
  const { createTestApp } = await import('../test/support/app.ts');
  const { signUpUser } = await import('../test/support/users.ts');
  const { createApiKey, createOrgAndWorkspace } = await import('../test/support/gateway.ts');
  const inspector = defineModule({ ref: moduleRef<undefined>('bench-inspector'), dependsOn: [], create: () => ({ api: undefined, hooks: [hook(MCP_RESULT_INSPECTORS, async (r) => ({ verdict: JSON.stringify(r.content).includes('IGNORE ALL') ? 'block' : 'allow' }))] }) });
  const high = { ip: { limit: 10_000_000, windowSeconds: 60 }, principal: { limit: 10_000_000, windowSeconds: 60 } };
  const t = await createTestApp({
    modules: [...FEATURE_MODULES, inspector],
    logLevel: 'warn',
    overrides: { 'mcp.upstream.allowedHosts': ['127.0.0.1:*'], 'mcp.upstream.allowedCidrs': ['127.0.0.1/32'], 'mcp.upstream.allowInsecureHttp': true, 'rateLimit.categories': { mcp: high }, 'mcp.oauth.accessTokenTtlSeconds': 3600 },
  });
  try {
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    const address = t.app.server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const user = await signUpUser(t.app, t.mail, 'bench-mcp@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, user, 'Bench');
    const put = await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/bench`, payload: { url: upstreamUrl }, headers: user.auth });
    if (put.statusCode !== 200) throw new Error(put.body);
    await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/bench/sync`, payload: {}, headers: user.auth });
    await t.app.inject({ method: 'PUT', url: `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/bench/tools/echo`, payload: { status: 'approved' }, headers: user.auth });
    const { key, id } = await createApiKey(t, user, org, ws, { scopes: ['mcp:tools'] });
    const tokenRes = await fetch(`${base}/v1/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${id}:${key}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${base}/v1/mcp/${ws}` }),
    });
    if (!tokenRes.ok) throw new Error(await tokenRes.text());
    const { access_token: accessToken } = (await tokenRes.json()) as { access_token: string };
    const direct = await connect(upstreamUrl, {});
    const gated = await connect(`${base}/v1/mcp/${ws}`, { authorization: `Bearer ${key}` });
    const oauth = await connect(`${base}/v1/mcp/${ws}`, { authorization: `Bearer ${accessToken}` });
    await run(direct, 'echo', 200);
    await run(gated, 'bench__echo', 200);
    await run(oauth, 'bench__echo', 200);
    const d: number[] = [];
    const g: number[] = [];
    const o: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      d.push(await run(direct, 'echo', CALLS));
      g.push(await run(gated, 'bench__echo', CALLS));
      o.push(await run(oauth, 'bench__echo', CALLS));
    }
    const [dm, gm, om] = [median(d), median(g), median(o)];
    const slices = (xs: number[]) => xs.map((x) => x.toFixed(0)).join(', ');
    console.log(`direct:  ${dm.toFixed(0)} tool calls/s (slices ${slices(d)})`);
    console.log(`gateway, API key: ${gm.toFixed(0)} tool calls/s (slices ${slices(g)})`);
    console.log(`gateway, OAuth access token: ${om.toFixed(0)} tool calls/s (slices ${slices(o)})`);
    console.log(`ratio gateway/direct: ${(gm / dm).toFixed(2)} with the key, ${(om / dm).toFixed(2)} with the token; token/key ${(om / gm).toFixed(2)} (${CALLS} calls x ${ROUNDS} rounds, ${IN_FLIGHT} in flight)`);
    console.log(`load average at end: ${loadavg().map((l) => l.toFixed(2)).join(' ')}`);
    await direct.close();
    await gated.close();
    await oauth.close();
  } finally {
    await t.close();
    await worker.terminate();
  }
}

if (isMainThread) {
  main().catch((err: unknown) => {
    console.error(err);
    process.exit(1);
  });
} else {
  void upstreamWorker();
}
