/**
 * The ingest path's endpoint cache on two nodes (EDGE-6), PostgreSQL + Redis: both nodes cache an
 * endpoint's opened secrets, and a change made on one node takes effect at once on the other — a
 * removed secret, a deleted endpoint, a deleted org. A Redis that restarts empty (its memory and
 * the nodes' subscriptions lost) never lets a node accept a deleted endpoint or a removed secret:
 * while the subscription is down the node reads the database, and drops its cache when it is back.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Node } from '../../src/cli/runtime.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { privateRedisSkipReason, startPrivateRedis, type PrivateService } from '../support/private-services.ts';
import { eventually } from '../support/smtp-sink.ts';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import type { SignedInUser } from '../support/users.ts';
import { makeEndpoint, orgAdmin } from './fixture.ts';
import { githubHeaders } from './signers.ts';

const OLD = 'cache-secret-old-0123';
const NEW = 'cache-secret-new-0123';

async function deliver(node: Node, org: string, endpoint: string, secret: string): Promise<[number, string | undefined]> {
  const body = `{"tag":"${randomUUID()}"}`;
  const res = await node.app.inject({ method: 'POST', url: `/v1/hooks/${org}/${endpoint}`, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, secret, randomUUID())) } });
  return [res.statusCode, res.statusCode === 200 ? undefined : res.json<{ error: { code: string } }>().error.code];
}

const secretsUrl = (org: string, endpoint: string) => `/v1/orgs/${org}/webhooks/endpoints/${endpoint}/secrets`;

async function rotate(node: Node, admin: SignedInUser, org: string, endpoint: string): Promise<void> {
  expect((await node.app.inject({ method: 'POST', url: secretsUrl(org, endpoint), headers: admin.auth, payload: { secret: NEW } })).statusCode).toBe(201);
  const listed = (await node.app.inject({ url: secretsUrl(org, endpoint), headers: admin.auth })).json<{ secrets: { id: string; createdAt: string }[] }>().secrets;
  const oldest = [...listed].sort((x, y) => x.createdAt.localeCompare(y.createdAt))[0];
  expect((await node.app.inject({ method: 'DELETE', url: `${secretsUrl(org, endpoint)}/${oldest?.id ?? ''}`, headers: admin.auth })).statusCode).toBe(204);
}

describe.skipIf(twoNodeSkipReason !== undefined)('endpoint cache on two nodes (PostgreSQL + Redis)', () => {
  let nodes: TwoNodes;
  let admin: SignedInUser;
  let org: string;

  beforeAll(async () => {
    nodes = await startTwoNodes({ overrides: { 'rateLimit.enabled': false, 'webhooks.endpointCacheSeconds': 300 } });
    ({ user: admin, org } = await orgAdmin(nodes.a.app, nodes.mail, 'cache-hooks@example.com'));
  });
  afterAll(async () => nodes?.close());

  it('a secret rotated on node A (new added, old removed) applies at once on node B, which had the endpoint cached', async () => {
    await makeEndpoint(nodes.a.app, admin, org, { name: 'rot', provider: 'github', secrets: [OLD] });
    expect(await deliver(nodes.b, org, 'rot', OLD)).toEqual([200, undefined]);
    expect(nodes.b.use(WEBHOOKS).cache.size).toBeGreaterThan(0);
    expect(await deliver(nodes.b, org, 'rot', OLD)).toEqual([200, undefined]);
    await rotate(nodes.a, admin, org, 'rot');
    expect(await deliver(nodes.b, org, 'rot', OLD)).toEqual([401, 'WEBHOOK_SIGNATURE_INVALID']);
    expect(await deliver(nodes.b, org, 'rot', NEW)).toEqual([200, undefined]);
  });

  it('attack: an endpoint deleted on node A is refused at once on node B — 404 WEBHOOK_ENDPOINT_NOT_FOUND', async () => {
    await makeEndpoint(nodes.a.app, admin, org, { name: 'del', provider: 'github', secrets: [OLD] });
    expect(await deliver(nodes.b, org, 'del', OLD)).toEqual([200, undefined]);
    expect((await nodes.a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/webhooks/endpoints/del`, headers: admin.auth })).statusCode).toBe(204);
    expect(await deliver(nodes.b, org, 'del', OLD)).toEqual([404, 'WEBHOOK_ENDPOINT_NOT_FOUND']);
  });

  it('attack: an org deleted on node A: its endpoint is refused at once on node B — 404 WEBHOOK_ENDPOINT_NOT_FOUND', async () => {
    const other = await orgAdmin(nodes.a.app, nodes.mail, 'cache-doomed@example.com');
    await makeEndpoint(nodes.a.app, other.user, other.org, { name: 'gone', provider: 'github', secrets: [OLD] });
    expect(await deliver(nodes.b, other.org, 'gone', OLD)).toEqual([200, undefined]);
    expect((await nodes.a.app.inject({ method: 'DELETE', url: `/v1/orgs/${other.org}`, headers: other.user.auth })).statusCode).toBe(204);
    expect(await deliver(nodes.b, other.org, 'gone', OLD)).toEqual([404, 'WEBHOOK_ENDPOINT_NOT_FOUND']);
  });
});

const privateSkip = twoNodeSkipReason ?? privateRedisSkipReason;

describe.skipIf(privateSkip !== undefined)('endpoint cache when Redis restarts empty (two nodes, private Redis)', () => {
  let redis: PrivateService | undefined;
  let nodes: TwoNodes | undefined;

  beforeAll(async () => {
    redis = await startPrivateRedis();
    nodes = await startTwoNodes({ env: { REDIS_URL: redis.url }, overrides: { 'rateLimit.enabled': false, 'webhooks.endpointCacheSeconds': 300 } });
  });
  afterAll(async () => {
    await nodes?.close();
    await redis?.close();
  });

  it('attack: while Redis is down and after it restarts empty, node B never accepts an endpoint deleted or a secret removed on node A meanwhile', async () => {
    if (!nodes || !redis) throw new Error('not started');
    const { a, b } = nodes;
    const { user, org } = await orgAdmin(a.app, nodes.mail, 'cache-outage@example.com');
    await makeEndpoint(a.app, user, org, { name: 'gone', provider: 'github', secrets: [OLD] });
    await makeEndpoint(a.app, user, org, { name: 'rot', provider: 'github', secrets: [OLD] });
    expect(await deliver(b, org, 'gone', OLD)).toEqual([200, undefined]);
    expect(await deliver(b, org, 'rot', OLD)).toEqual([200, undefined]);
    expect(b.use(WEBHOOKS).cache.size).toBe(2);

    await redis.stop();
    expect(await eventually(() => !a.kv.subscriptionsLive() && !b.kv.subscriptionsLive(), 200, 50)).toBe(true);
    expect((await a.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/webhooks/endpoints/gone`, headers: user.auth })).statusCode).toBe(204);
    await rotate(a, user, org, 'rot');
    // The eviction could not be published; B does not trust its cache meanwhile.
    expect(await deliver(b, org, 'gone', OLD)).toEqual([404, 'WEBHOOK_ENDPOINT_NOT_FOUND']);
    expect(await deliver(b, org, 'rot', OLD)).toEqual([401, 'WEBHOOK_SIGNATURE_INVALID']);

    await redis.start();
    expect(await eventually(() => a.kv.subscriptionsLive() && b.kv.subscriptionsLive(), 400, 50)).toBe(true);
    expect(await deliver(b, org, 'gone', OLD)).toEqual([404, 'WEBHOOK_ENDPOINT_NOT_FOUND']);
    expect(await deliver(b, org, 'rot', OLD)).toEqual([401, 'WEBHOOK_SIGNATURE_INVALID']);
    expect(await deliver(b, org, 'rot', NEW)).toEqual([200, undefined]);
  }, 120_000);
});
