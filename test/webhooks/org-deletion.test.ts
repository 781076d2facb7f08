/**
 * Deleting an org removes its webhook rows (EDGE-6, TEN-1): endpoints, provider secrets, events,
 * replay records, relay queue rows and attempts all go with the org, in the deletion itself;
 * another org's and the platform's stay. A sender still posting to the deleted org's endpoint is
 * refused as for any unknown endpoint.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { LOOPBACK_RELAY, makeEndpoint, orgAdmin, startDestination, type Destination } from './fixture.ts';
import { githubHeaders } from './signers.ts';

let t: TestApp;
let dest: Destination;
const SECRET = 'org-deletion-secret';
const TABLES = ['webhook_endpoints', 'webhook_secrets', 'webhook_events', 'webhook_replays', 'webhook_deliveries', 'webhook_attempts'] as const;

beforeAll(async () => {
  dest = await startDestination();
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, ...LOOPBACK_RELAY } });
});
afterAll(async () => {
  await t.close();
  await dest.close();
});

async function post(org: string, endpoint: string): Promise<{ statusCode: number; code?: string | undefined }> {
  const body = `{"tag":"${randomUUID()}"}`;
  const res = await t.app.inject({ method: 'POST', url: `/v1/hooks/${org}/${endpoint}`, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, SECRET, randomUUID())) } });
  return { statusCode: res.statusCode, code: res.json<{ error?: { code: string } }>().error?.code };
}

/** Rows of each webhook table per tenant, read as the owner (no tenant context hides any). */
async function counts(tenantId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  await t.node.db.asOwner(async (tx) => {
    for (const table of TABLES) out[table] = (await tx.query<{ n: number }>(`select count(*)::int as n from ${table} where tenant_id = $1`, [tenantId])).rows[0]?.n ?? -1;
  });
  return out;
}

describe('org deletion and webhooks', () => {
  it('deleting an org removes its endpoints, secrets, events, replay records, deliveries and attempts; another org\'s and the platform\'s stay', async () => {
    const doomed = await orgAdmin(t.app, t.mail, 'hooks-doomed@example.com');
    const kept = await orgAdmin(t.app, t.mail, 'hooks-kept@example.com');
    dest.setUp(false);
    for (const o of [doomed, kept]) {
      await makeEndpoint(t.app, o.user, o.org, { name: 'gh', provider: 'github', destinationUrl: dest.url, secrets: [SECRET] });
      expect((await post(o.org, 'gh')).statusCode).toBe(200);
    }
    const platform = await t.node.use(WEBHOOKS).endpoints.create(PLATFORM_TENANT_ID, { name: 'gh', provider: 'github', destinationUrl: null, verifyToken: null });
    await t.node.use(WEBHOOKS).endpoints.addSecret(PLATFORM_TENANT_ID, platform.endpoint.name, { secret: SECRET, expiresAt: null });
    expect((await post('platform', 'gh')).statusCode).toBe(200);
    // One failed attempt each, so every table holds rows of both orgs.
    await t.node.use(WEBHOOKS).relay.drain(1);
    const before = await counts(doomed.org);
    // At least one row each (the relay may have retried meanwhile: attempts can be more).
    for (const table of TABLES) expect([table, (before[table] ?? 0) >= 1]).toEqual([table, true]);

    const del = await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${doomed.org}`, headers: doomed.user.auth });
    expect(del.statusCode).toBe(204);

    expect(await counts(doomed.org)).toEqual(Object.fromEntries(TABLES.map((table) => [table, 0])));
    const other = await counts(kept.org);
    for (const table of TABLES) expect([table, (other[table] ?? 0) >= 1]).toEqual([table, true]);
    expect((await counts(PLATFORM_TENANT_ID)).webhook_events).toBe(1);
    expect(await post('platform', 'gh')).toMatchObject({ statusCode: 200 });
    dest.setUp(true);
  });

  it('attack: a sender still posting to a deleted org\'s endpoint is refused — 404 WEBHOOK_ENDPOINT_NOT_FOUND, nothing stored', async () => {
    const o = await orgAdmin(t.app, t.mail, 'hooks-deleted-sender@example.com');
    await makeEndpoint(t.app, o.user, o.org, { name: 'late', provider: 'github', destinationUrl: null, secrets: [SECRET] });
    expect((await post(o.org, 'late')).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${o.org}`, headers: o.user.auth })).statusCode).toBe(204);
    expect(await post(o.org, 'late')).toEqual({ statusCode: 404, code: 'WEBHOOK_ENDPOINT_NOT_FOUND' });
    expect((await counts(o.org)).webhook_events).toBe(0);
  });
});
