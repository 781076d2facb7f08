/**
 * Client tokens (GW-6) on two nodes sharing PostgreSQL and Redis: revoking the parent API key on
 * node A refuses every token minted from it on node B within a second although B had the parent
 * cached (the key's eviction reaches every node); removing the member who minted a token refuses
 * it on both nodes (tenancy's eviction); a subject's rate limit holds under concurrent calls spread
 * over both nodes; one token revoked by its id on node A is refused on both nodes within a second
 * while its parent key and sibling tokens keep working, and stays refused when kv forgets it (the
 * database decides); a subject's monthly call limit holds under concurrent calls over both nodes,
 * and after its kv counter is lost (rebuilt from the usage records). Runs in CI (DATABASE_URL and REDIS_URL); skipped locally without them.
 */
import type { AddressInfo } from 'node:net';
import OpenAI, { AuthenticationError, RateLimitError } from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { mockProviders, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const messages = [{ role: 'user' as const, content: 'Say hello.' }];

(skip ? describe.skip : describe)(`client tokens on two nodes, PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;
  let urlA: string;
  let urlB: string;
  let vendor: MockVendor;
  let owner: SignedInUser;
  let org: string;
  let ws: string;
  let mail: MailMessage[] = [];

  beforeAll(async () => {
    vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
    nodes = await startTwoNodes({
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS: JSON.stringify({ openai: VENDOR_KEYS.openai, faulty: VENDOR_KEYS.openai, anthropic: VENDOR_KEYS.anthropic }) },
      overrides: {
        'gateway.upstream.allowedHosts': ['127.0.0.1:*'],
        'gateway.upstream.allowedCidrs': ['127.0.0.1/32'],
        'gateway.upstream.allowInsecureHttp': true,
        'gateway.providers': mockProviders(vendor.url),
        // Long cache lifetimes: only eviction messages can explain a change seen within a second.
        'gateway.keyCacheSeconds': 3600,
        'tenancy.authorityCacheSeconds': 300,
      },
    });
    ({ a, b, mail } = nodes);
    for (const node of [a, b]) await node.app.listen({ port: 0, host: '127.0.0.1' });
    urlA = `http://127.0.0.1:${(a.app.server.address() as AddressInfo).port}`;
    urlB = `http://127.0.0.1:${(b.app.server.address() as AddressInfo).port}`;
    owner = await signUpUser(a.app, mail, 'tokens-two-nodes@example.com');
    org = (await a.app.inject({ method: 'POST', url: '/v1/orgs', payload: { name: 'Two nodes' }, headers: owner.auth })).json().id;
    ws = (await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces`, payload: { name: 'W' }, headers: owner.auth })).json().id;
  });

  afterAll(async () => {
    await nodes?.close();
    await vendor?.close();
  });

  const client = (url: string, apiKey: string): OpenAI => new OpenAI({ apiKey, baseURL: `${url}/v1`, maxRetries: 0, timeout: 10_000 });
  const chat = (url: string, token: string) => client(url, token).chat.completions.create({ model: 'mock-model', messages });

  async function createKey(): Promise<{ key: string; id: string }> {
    const res = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys`, payload: { name: 'k', scopes: ['ai:chat', 'tokens:mint'] }, headers: owner.auth });
    expect(res.statusCode).toBe(201);
    return { key: res.json().key, id: res.json().apiKey.id };
  }

  async function mint(node: Node, key: string, body: object = {}): Promise<string> {
    const res = await node.app.inject({ method: 'POST', url: '/v1/tokens', payload: body, headers: { authorization: `Bearer ${key}` } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json().token;
  }

  /** Milliseconds until every token is refused as unauthenticated on `url`; Infinity after a second. */
  async function refusedWithin1s(url: string, tokens: readonly string[]): Promise<number> {
    const t0 = Date.now();
    while (Date.now() - t0 < 1000) {
      const refused = await Promise.all(tokens.map((token) => chat(url, token).then(() => false, (err: unknown) => err instanceof AuthenticationError)));
      if (refused.every(Boolean)) return Date.now() - t0;
    }
    return Infinity;
  }

  it('a parent key revoked on node A refuses its tokens on node B within a second, though B had the key cached', async () => {
    const parent = await createKey();
    const tokens = [await mint(a, parent.key), await mint(b, parent.key, { subject: 'bot-1' })];
    for (const token of tokens) for (const url of [urlA, urlB]) expect((await chat(url, token)).choices).toHaveLength(1);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/api-keys/${parent.id}`, headers: owner.auth })).statusCode).toBe(204);
    expect(await refusedWithin1s(urlB, tokens)).toBeLessThan(1000);
    expect(await refusedWithin1s(urlA, tokens)).toBeLessThan(1000);
  });

  it('a member removed on node A: the tokens they minted are refused on both nodes within a second', async () => {
    const parent = await createKey();
    const editor = await signUpUser(a.app, mail, 'tokens-editor@example.com');
    const invited = await a.app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, payload: { email: editor.email, role: 'editor' }, headers: owner.auth });
    expect(invited.statusCode, invited.body).toBe(201);
    const text = [...mail].reverse().find((m) => m.to === editor.email && m.kind === 'invitation')?.text ?? '';
    const invitation = /ghi_[A-Za-z0-9_-]{65}/.exec(text)?.[0];
    expect((await a.app.inject({ method: 'POST', url: '/v1/invitations/accept', payload: { token: invitation }, headers: editor.auth })).statusCode).toBe(200);
    const res = await b.app.inject({ method: 'POST', url: `/v1/orgs/${org}/workspaces/${ws}/tokens`, payload: { apiKey: parent.id }, headers: editor.auth });
    expect(res.statusCode, res.body).toBe(201);
    const token = res.json().token as string;
    for (const url of [urlA, urlB]) expect((await chat(url, token)).choices).toHaveLength(1);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/members/${editor.userId}`, headers: owner.auth })).statusCode).toBe(204);
    expect(await refusedWithin1s(urlB, [token])).toBeLessThan(1000);
    expect(await refusedWithin1s(urlA, [token])).toBeLessThan(1000);
    // The parent key itself is untouched.
    expect((await chat(urlB, await mint(b, parent.key))).choices).toHaveLength(1);
  });

  it('attack: 30 concurrent calls of one subject through three tokens, spread over both nodes, at 6 a minute: exactly 6 pass', async () => {
    const parent = await createKey();
    const tokens = [await mint(a, parent.key, { subject: 'player-42', rateLimitPerMinute: 6 }), await mint(b, parent.key, { subject: 'player-42', rateLimitPerMinute: 6 }), await mint(a, parent.key, { subject: 'player-42', rateLimitPerMinute: 6 })];
    const results = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => chat(i % 2 ? urlA : urlB, tokens[i % 3]!)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(6);
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(RateLimitError);
    // Another subject of the same key has its own window.
    expect((await chat(urlB, await mint(b, parent.key, { subject: 'player-43', rateLimitPerMinute: 6 }))).choices).toHaveLength(1);
  });

  it('attack: one token revoked by its id on node A is refused on node B within a second (cached live there); its parent and a sibling token still work; kv losing the revocation does not bring it back', async () => {
    const parent = await createKey();
    const res = await a.app.inject({ method: 'POST', url: '/v1/tokens', payload: { subject: 'bot-r' }, headers: { authorization: `Bearer ${parent.key}` } });
    expect(res.statusCode, res.body).toBe(201);
    const { token, tokenId } = res.json() as { token: string; tokenId: string };
    const sibling = await mint(b, parent.key, { subject: 'bot-r' });
    // Both nodes have seen the token live (cached in kv as live).
    for (const url of [urlA, urlB]) expect((await chat(url, token)).choices).toHaveLength(1);
    // A client token cannot revoke tokens, not even itself.
    const bySelf = await b.app.inject({ method: 'POST', url: '/v1/tokens/revoke', payload: { tokenId }, headers: { authorization: `Bearer ${token}` } });
    expect([bySelf.statusCode, bySelf.json().error.code]).toEqual([403, 'FORBIDDEN']);
    const revoked = await a.app.inject({ method: 'POST', url: '/v1/tokens/revoke', payload: { tokenId }, headers: { authorization: `Bearer ${parent.key}` } });
    expect(revoked.statusCode, revoked.body).toBe(200);
    expect(revoked.json()).toEqual({ tokenId, revoked: true, alreadyRevoked: false });
    expect(await refusedWithin1s(urlB, [token])).toBeLessThan(1000);
    expect(await refusedWithin1s(urlA, [token])).toBeLessThan(1000);
    expect((await chat(urlB, sibling)).choices).toHaveLength(1);
    expect((await chat(urlA, await mint(a, parent.key))).choices).toHaveLength(1);
    // kv forgets (a Redis restarted without persistence): the database still refuses it, on both nodes.
    await a.kv.del(`tok:rv:${org}:${ws}:${tokenId}`);
    for (const url of [urlB, urlA]) await expect(chat(url, token)).rejects.toBeInstanceOf(AuthenticationError);
    // A member revokes the sibling through the console route; revoking twice says so.
    const siblingId = JSON.parse(Buffer.from(sibling.split('.')[1]!, 'base64url').toString()).jti as string;
    const byMember = await b.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/tokens/${siblingId}`, headers: owner.auth });
    expect(byMember.json()).toEqual({ tokenId: siblingId, revoked: true, alreadyRevoked: false });
    expect((await b.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/workspaces/${ws}/tokens/${siblingId}`, headers: owner.auth })).json().alreadyRevoked).toBe(true);
    expect(await refusedWithin1s(urlA, [sibling])).toBeLessThan(1000);
  });

  it('attack: 12 concurrent calls of subject S at a monthly limit of 3, spread over both nodes: exactly 3 pass, 429 insufficient_quota for the rest; subject T still served; the kv counter deleted is rebuilt from the usage records and never overshoots', async () => {
    const parent = await createKey();
    const tokens = [await mint(a, parent.key, { subject: 'bot-S', monthlyCallLimit: 3 }), await mint(b, parent.key, { subject: 'bot-S', monthlyCallLimit: 3 })];
    /** Fulfilled calls; every refusal is the exact 429 MONTHLY_LIMIT_REACHED (OpenAI `insufficient_quota`). */
    const burst = async (list: readonly string[], n: number): Promise<number> => {
      const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => chat(i % 2 ? urlA : urlB, list[i % list.length]!)));
      for (const r of results) if (r.status === 'rejected') expect([r.reason instanceof RateLimitError, (r.reason as RateLimitError).status, (r.reason as RateLimitError).code]).toEqual([true, 429, 'insufficient_quota']);
      return results.filter((r) => r.status === 'fulfilled').length;
    };
    expect(await burst(tokens, 12)).toBe(3);
    expect((await chat(urlB, await mint(b, parent.key, { subject: 'bot-T', monthlyCallLimit: 3 }))).choices).toHaveLength(1);
    const month = new Date().toISOString().slice(0, 7);
    const counterOf = (subject: string): string => `gw:calls:${parent.id}:sub:${Buffer.from(subject).toString('base64url')}:${month}`;
    const forget = async (subject: string): Promise<void> => {
      // Both nodes' usage written, then the counter lost (a Redis restarted without persistence).
      for (const node of [a, b]) await node.gateway.meter.flush();
      expect(await a.kv.get(counterOf(subject))).not.toBeNull();
      await a.kv.del(counterOf(subject));
    };
    await forget('bot-S');
    expect(await burst(tokens, 12)).toBe(0);
    // Part of a budget used (one call on each node), the counter lost: exactly the rest passes.
    const u = [await mint(a, parent.key, { subject: 'bot-U', monthlyCallLimit: 5 }), await mint(b, parent.key, { subject: 'bot-U', monthlyCallLimit: 5 })];
    for (const url of [urlA, urlB]) expect((await chat(url, u[0]!)).choices).toHaveLength(1);
    await forget('bot-U');
    expect(await burst(u, 12)).toBe(3);
  });
});
