/**
 * The MCP authorization server on two nodes behind one public URL, sharing PostgreSQL and Redis:
 * one code redeemed on both nodes at once gives exactly one token; a refresh token spent on node A
 * and replayed on node B revokes the grant even after kv lost the record of its use (the database
 * decides); a grant revoked on node A refuses its access token on node B at once, though B had
 * the key cached.
 */
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import { startMcpTwoNodes, type McpTwoNodes } from '../mcp/support.ts';
import { listToolsWith, tokenRequest } from './support.ts';

const PUBLIC = 'http://gatehouse.test';
const REDIRECT = 'http://127.0.0.1:9/callback';
const s256 = (v: string) => createHash('sha256').update(v).digest('base64url');
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString()) as { jti: string; gh_key: string };

(skip ? describe.skip : describe)(`MCP OAuth on two nodes, PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes;
  let org: string;
  let ws: string;
  let urlA: string;
  let urlB: string;

  const inject = (method: 'PUT' | 'POST' | 'DELETE', url: string, payload?: object) => rig.inject(method, url, payload);

  /** Registers a client on node A and has the owner approve it: the client id, a code and its verifier. */
  async function approved(): Promise<{ clientId: string; code: string; verifier: string }> {
    const reg = await nodes.a.app.inject({ method: 'POST', url: '/v1/oauth/register', payload: { client_name: 'Two nodes client', redirect_uris: [REDIRECT] } });
    expect(reg.statusCode, reg.body).toBe(201);
    const clientId = reg.json<{ client_id: string }>().client_id;
    const verifier = randomBytes(32).toString('base64url');
    const query = { response_type: 'code', client_id: clientId, redirect_uri: REDIRECT, code_challenge: s256(verifier), code_challenge_method: 'S256', resource: `${PUBLIC}/v1/mcp/${ws}` };
    const res = await inject('POST', '/v1/oauth/consent', { query, decision: 'approve' });
    expect(res.statusCode, res.body).toBe(200);
    return { clientId, verifier, code: new URL(res.json<{ redirectTo: string }>().redirectTo).searchParams.get('code') ?? '' };
  }

  const redeem = (url: string, g: { clientId: string; code: string; verifier: string }) =>
    tokenRequest(url, { grant_type: 'authorization_code', code: g.code, code_verifier: g.verifier, redirect_uri: REDIRECT, client_id: g.clientId });

  let rig: McpTwoNodes;

  beforeAll(async () => {
    rig = await startMcpTwoNodes('mcp-oauth-two-nodes@example.com', { 'server.publicUrl': PUBLIC, 'rateLimit.enabled': false });
    ({ nodes, org, ws, urlA, urlB } = rig);
  });

  afterAll(async () => rig?.close());

  it('attack: one code redeemed 12 times at once, half on each node: exactly one token', async () => {
    const g = await approved();
    const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => redeem(i % 2 === 0 ? urlA : urlB, g)));
    expect(answers.filter((r) => r.status === 200)).toHaveLength(1);
    for (const r of answers.filter((x) => x.status !== 200)) expect(await r.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('attack: a refresh token spent on node A and replayed on node B after kv lost its use: refused, and the grant revoked', async () => {
    const g = await approved();
    const first = (await (await redeem(urlA, g)).json()) as { access_token: string; refresh_token: string };
    const spent = await tokenRequest(urlA, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: g.clientId });
    expect(spent.status).toBe(200);
    const next = (await spent.json()) as { access_token: string };
    expect((await listToolsWith(urlB, ws, next.access_token)).status).toBe(200);
    // Redis forgets that the refresh token was used: the database still knows.
    await nodes.a.kv.del(`tok:rv:${org}:${ws}:${claimsOf(first.refresh_token).jti}`);
    const replay = await tokenRequest(urlB, { grant_type: 'refresh_token', refresh_token: first.refresh_token, client_id: g.clientId });
    expect(replay.status).toBe(400);
    expect(await replay.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await listToolsWith(urlA, ws, next.access_token)).status).toBe(401);
    expect((await listToolsWith(urlB, ws, next.access_token)).status).toBe(401);
  });

  it('a grant revoked on node A refuses its access token on node B within a second, though B had the key cached', async () => {
    const g = await approved();
    const { access_token: access } = (await (await redeem(urlB, g)).json()) as { access_token: string };
    expect((await listToolsWith(urlB, ws, access)).status).toBe(200);
    expect((await inject('DELETE', `/v1/orgs/${org}/workspaces/${ws}/api-keys/${claimsOf(access).gh_key}`)).statusCode).toBe(204);
    const started = Date.now();
    let status = 200;
    while (status === 200 && Date.now() - started < 5000) {
      status = (await listToolsWith(urlB, ws, access)).status;
      if (status === 200) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(401);
    expect(Date.now() - started).toBeLessThan(1000);
  });
});
