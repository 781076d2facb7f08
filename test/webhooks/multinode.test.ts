/**
 * Webhooks on two nodes (EDGE-6), PostgreSQL + Redis: the same event delivered to both nodes at
 * once is stored once (the other answer is WEBHOOK_REPLAYED), and the relay on both nodes delivers
 * every event after a destination outage, each once while nothing crashes (at-least-once).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS } from '../../src/jobs/index.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import type { SignedInUser } from '../support/users.ts';
import { LOOPBACK_RELAY, makeEndpoint, orgAdmin, startDestination, type Destination } from './fixture.ts';
import { stripeHeader } from './signers.ts';

const SECRET = `whsec_${randomUUID().replaceAll('-', '')}`;

describe.skipIf(twoNodeSkipReason !== undefined)('webhooks on two nodes (PostgreSQL + Redis)', () => {
  let nodes: TwoNodes;
  let dest: Destination;
  let admin: SignedInUser;
  let org: string;
  let clock = Date.now();

  beforeAll(async () => {
    dest = await startDestination();
    nodes = await startTwoNodes({ overrides: { 'rateLimit.enabled': false, ...LOOPBACK_RELAY, 'webhooks.relay.maxAttempts': 20 }, now: () => clock });
    ({ user: admin, org } = await orgAdmin(nodes.a.app, nodes.mail, 'two-node-hooks@example.com'));
    await makeEndpoint(nodes.a.app, admin, org, { name: 'pay', provider: 'stripe', destinationUrl: dest.url, secrets: [SECRET] });
  });
  afterAll(async () => {
    await nodes?.close();
    await dest?.close();
  });

  const deliver = (node: 'a' | 'b', body: string, header: Record<string, string>) =>
    nodes[node].app.inject({ method: 'POST', url: `/v1/hooks/${org}/pay`, payload: body, headers: { 'content-type': 'application/json', ...header } });

  it('two nodes receive the same event at once: stored once, the other refused as a replay', async () => {
    dest.setUp(false);
    const PAIRS = 25;
    const ids = Array.from({ length: PAIRS }, () => `evt_${randomUUID()}`);
    const answers = await Promise.all(
      ids.flatMap((id) => {
        const body = `{"id":"${id}","type":"charge.succeeded"}`;
        const header = stripeHeader(body, SECRET, Math.floor(clock / 1000));
        return [deliver('a', body, header), deliver('b', body, header)];
      }),
    );
    for (let i = 0; i < PAIRS; i++) {
      const pair = [answers[2 * i]?.statusCode, answers[2 * i + 1]?.statusCode].sort();
      expect(pair).toEqual([200, 409]);
    }
    const { rows } = await nodes.a.db.asOwner((tx) => tx.query<{ event_id: string; n: number }>('select event_id, count(*)::int as n from webhook_events group by event_id'));
    expect(rows.length).toBe(PAIRS);
    expect(rows.every((r) => r.n === 1)).toBe(true);
  });

  it('destination down then up, both nodes relaying: every event delivered, none lost, none twice', async () => {
    await Promise.all([nodes.a.use(WEBHOOKS).relay.drain(), nodes.b.use(WEBHOOKS).relay.drain()]);
    expect(dest.received.length).toBe(0);
    dest.setUp(true);
    for (let i = 0; i < 8; i++) {
      clock += 5_000;
      await Promise.all([nodes.a.use(JOBS).run('webhooks.redeliver', 'schedule', new Date(clock)), nodes.b.use(WEBHOOKS).relay.drain(), nodes.a.use(WEBHOOKS).relay.drain()]);
    }
    const { rows } = await nodes.a.db.asOwner((tx) => tx.query<{ id: string; status: string }>('select e.id, d.status from webhook_events e join webhook_deliveries d on d.event_id = e.id'));
    expect(rows.every((r) => r.status === 'delivered')).toBe(true);
    const got = dest.received.map((r) => r.headers['webhook-id']);
    expect(new Set(got).size).toBe(rows.length);
    expect(got.length).toBe(rows.length);
  });
});
