/**
 * The relay (EDGE-6): stored events are delivered to the org's destination signed with Standard
 * Webhooks under the endpoint's own secret; a destination that is down gets them after it is back
 * (none lost, retries with backoff), an event is dead-lettered after the last attempt and can be
 * redelivered; destinations the egress policy refuses are refused when configured.
 */
import { randomUUID } from 'node:crypto';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS } from '../../src/jobs/index.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import type { SignedInUser } from '../support/users.ts';
import { LOOPBACK_RELAY, makeEndpoint, orgAdmin, startDestination, type Destination } from './fixture.ts';
import { githubHeaders } from './signers.ts';

let t: TestApp;
let admin: SignedInUser;
let org: string;
let dest: Destination;
let destinationSecret: string;
let clock = Date.now();
const SECRET = 'github-relay-secret';

beforeAll(async () => {
  dest = await startDestination();
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, ...LOOPBACK_RELAY }, now: () => clock });
  ({ user: admin, org } = await orgAdmin(t.app, t.mail, 'relay-admin@example.com'));
  ({ destinationSecret } = await makeEndpoint(t.app, admin, org, { name: 'gh', provider: 'github', destinationUrl: dest.url, secrets: [SECRET] }));
});
afterAll(async () => {
  await t.close();
  await dest.close();
});

async function send(n: number): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = `{"n":${i},"tag":"${randomUUID()}"}`;
    const res = await t.app.inject({ method: 'POST', url: `/v1/hooks/${org}/gh`, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, SECRET, randomUUID())) } });
    expect(res.statusCode).toBe(200);
    ids.push(res.json<{ id: string }>().id);
  }
  return ids;
}

const relay = () => t.node.use(WEBHOOKS).relay;
const redeliverJob = () => t.node.use(JOBS).run('webhooks.redeliver', 'cli');
const eventOf = async (id: string) => (await t.app.inject({ url: `/v1/orgs/${org}/webhooks/events/${id}`, headers: admin.auth })).json<{ event: { status: string; attempts: number }; attempts: { statusCode: number | null; error: string | null }[] }>();

describe('relay to the org destination', () => {
  it('delivers each event signed with Standard Webhooks under the destination secret, the provider JSON byte for byte', async () => {
    const [id] = await send(1);
    await relay().drain();
    const got = dest.received.find((r) => r.headers['webhook-id'] === id);
    expect(got).toBeDefined();
    // The receiver's own check: the standardwebhooks library with the secret shown at creation.
    clock = Date.now();
    const verified = new Webhook(destinationSecret).verify(got?.body ?? '', got?.headers ?? {}) as { data: { payload: { n: number } } };
    expect(verified.data.payload.n).toBe(0);
    expect((await eventOf(id as string)).event.status).toBe('delivered');
  });

  it('destination down then up: every event is kept and delivered after, none lost', async () => {
    dest.setUp(false);
    const before = dest.received.length;
    const ids = await send(12);
    await relay().drain();
    expect(dest.refusedCount()).toBeGreaterThanOrEqual(12);
    for (const id of ids) expect((await eventOf(id)).event.status).toBe('pending');
    // Still down at the first retry: the attempts count up, the events stay.
    clock += 5_000;
    await redeliverJob();
    dest.setUp(true);
    for (let i = 0; i < 5; i++) {
      clock += 5_000;
      await redeliverJob();
    }
    const deliveredIds = new Set(dest.received.slice(before).map((r) => r.headers['webhook-id']));
    for (const id of ids) {
      expect(deliveredIds.has(id)).toBe(true);
      const e = await eventOf(id);
      expect(e.event.status).toBe('delivered');
      expect(e.attempts.some((a) => a.error === 'http_503')).toBe(true);
    }
  });

  it('dead-letters an event after the last attempt, and redelivers it through the API', async () => {
    dest.setUp(false);
    const [id] = await send(1);
    for (let i = 0; i < 6; i++) {
      await relay().drain();
      clock += 5_000;
    }
    const dead = await eventOf(id as string);
    expect(dead.event.status).toBe('dead');
    expect(dead.event.attempts).toBe(4);
    const listed = await t.app.inject({ url: `/v1/orgs/${org}/webhooks/events?status=dead`, headers: admin.auth });
    expect(listed.json<{ events: { id: string }[] }>().events.map((e) => e.id)).toContain(id);
    dest.setUp(true);
    const again = await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/webhooks/events/${id}/redeliver`, headers: admin.auth });
    expect(again.statusCode).toBe(200);
    await relay().drain();
    expect((await eventOf(id as string)).event.status).toBe('delivered');
    expect(dest.received.some((r) => r.headers['webhook-id'] === id)).toBe(true);
  });

  it('attack: a destination on a private address or another port is refused when the endpoint is configured', async () => {
    const t2 = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
    try {
      const { user, org: org2 } = await orgAdmin(t2.app, t2.mail, 'relay-ssrf@example.com');
      for (const url of ['https://169.254.169.254/latest', 'https://127.0.0.1/x', 'http://hooks.example.com/x', 'https://hooks.example.com:8443/x', 'https://[::1]/x']) {
        const res = await t2.app.inject({ method: 'POST', url: `/v1/orgs/${org2}/webhooks/endpoints`, headers: user.auth, payload: { name: 'x', provider: 'github', destinationUrl: url } });
        expect(res.statusCode, url).toBe(400);
        expect(res.json<{ error: { code: string } }>().error.code, url).toBe('WEBHOOK_DESTINATION_NOT_ALLOWED');
      }
    } finally {
      await t2.close();
    }
  });

  it('attack: a name that resolves to a private address is refused at connect time and retried, never sent', async () => {
    const t3 = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'webhooks.relay.allowInsecureHttp': true } });
    try {
      const { user, org: org3 } = await orgAdmin(t3.app, t3.mail, 'relay-rebind@example.com');
      // localhost passes the pre-DNS check (a name), then resolves to loopback.
      await makeEndpoint(t3.app, user, org3, { name: 'rb', provider: 'github', destinationUrl: dest.url.replace('127.0.0.1', 'localhost').replace(/:\d+/, ''), secrets: [SECRET] });
      const before = dest.received.length;
      const body = '{"x":1}';
      const res = await t3.app.inject({ method: 'POST', url: `/v1/hooks/${org3}/rb`, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, SECRET, randomUUID())) } });
      const id = res.json<{ id: string }>().id;
      await t3.node.use(WEBHOOKS).relay.drain();
      const e = (await t3.app.inject({ url: `/v1/orgs/${org3}/webhooks/events/${id}`, headers: user.auth })).json<{ attempts: { error: string | null }[] }>();
      expect(e.attempts[0]?.error).toBe('egress_private_address');
      expect(dest.received.length).toBe(before);
    } finally {
      await t3.close();
    }
  });
});
