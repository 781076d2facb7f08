/**
 * Platform-level webhook endpoints (EDGE-6) and their operator API: the same shapes as the org
 * API under /v1/admin/webhooks, for operators only, audited on the platform log; and `keys rotate
 * dek` re-seals the platform's webhook secrets and payloads like any tenant's.
 */
import { randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEnvelope } from '../../src/crypto/envelope.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { SEALED_COLUMNS } from '../../src/features.ts';
import { rotateDeks, scanSealedColumns } from '../../src/keyring/reencrypt.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';
import { LOOPBACK_RELAY, orgAdmin, startDestination, type Destination } from './fixture.ts';
import { githubHeaders } from './signers.ts';

let t: TestApp;
let operator: SignedInUser;
let orgUser: SignedInUser;
let org: string;
let dest: Destination;
const SECRET = 'platform-github-secret';

beforeAll(async () => {
  dest = await startDestination();
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, ...LOOPBACK_RELAY } });
  operator = await signUpUser(t.app, t.mail, 'hooks-operator@example.com');
  await t.node.db.query('update users set is_operator = true where id = $1', [operator.userId]);
  ({ user: orgUser, org } = await orgAdmin(t.app, t.mail, 'hooks-org-owner@example.com'));
});
afterAll(async () => {
  await t.close();
  await dest.close();
});

const call = (user: SignedInUser, method: 'GET' | 'POST' | 'PATCH' | 'DELETE', url: string, payload?: unknown): Promise<LightMyRequestResponse> =>
  t.app.inject({ method, url, headers: user.auth, ...(payload === undefined ? {} : { payload: payload as Record<string, unknown> }) });

async function deliver(path: string, secret = SECRET): Promise<LightMyRequestResponse> {
  const body = `{"tag":"${randomUUID()}"}`;
  return t.app.inject({ method: 'POST', url: path, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, secret, randomUUID())) } });
}

const codeOf = (res: LightMyRequestResponse): string | undefined => res.json<{ error?: { code: string } }>().error?.code;

async function platformActions(): Promise<string[]> {
  const r = await t.node.db.asOwner((tx) => tx.query<{ body: string }>('select body from audit_events where tenant_id = $1 order by seq', [PLATFORM_TENANT_ID]));
  return r.rows.map((row) => (JSON.parse(row.body) as { action: string }).action);
}

describe('operator API of platform webhook endpoints', () => {
  it('create, add a secret, receive, list, update, rotate, list events and attempts, redeliver, delete: each change on the platform audit log', async () => {
    const created = await call(operator, 'POST', '/v1/admin/webhooks/endpoints', { name: 'billing', provider: 'github' });
    expect(created.statusCode).toBe(201);
    expect(created.json<{ destinationSecret: string }>().destinationSecret).toMatch(/^whsec_/);
    expect((await call(operator, 'POST', '/v1/admin/webhooks/endpoints/billing/secrets', { secret: SECRET })).statusCode).toBe(201);
    const secrets = await call(operator, 'GET', '/v1/admin/webhooks/endpoints/billing/secrets');
    expect(secrets.json<{ secrets: unknown[] }>().secrets).toHaveLength(1);
    expect(secrets.body).not.toContain(SECRET);

    const received = await deliver('/v1/hooks/platform/billing');
    expect(received.statusCode).toBe(200);
    const id = received.json<{ id: string }>().id;
    const listed = await call(operator, 'GET', '/v1/admin/webhooks/events');
    expect(listed.json<{ events: { id: string; status: string }[] }>().events.map((e) => [e.id, e.status])).toEqual([[id, 'no_destination']]);

    const patched = await call(operator, 'PATCH', '/v1/admin/webhooks/endpoints/billing', { destinationUrl: dest.url });
    expect(patched.statusCode).toBe(200);
    expect(patched.json<{ endpoint: { destinationUrl: string } }>().endpoint.destinationUrl).toBe(dest.url);
    const rotated = await call(operator, 'POST', '/v1/admin/webhooks/endpoints/billing/destination-secret', {});
    expect(rotated.statusCode).toBe(200);
    expect(rotated.json<{ destinationSecret: string }>().destinationSecret).not.toBe(created.json<{ destinationSecret: string }>().destinationSecret);

    const again = await call(operator, 'POST', `/v1/admin/webhooks/events/${id}/redeliver`, {});
    expect(again.statusCode).toBe(200);
    await t.node.use(WEBHOOKS).relay.drain();
    const one = await call(operator, 'GET', `/v1/admin/webhooks/events/${id}`);
    expect(one.json<{ event: { status: string }; attempts: { statusCode: number }[] }>()).toMatchObject({ event: { status: 'delivered' }, attempts: [{ statusCode: 204 }] });
    expect(dest.received.some((r) => r.headers['webhook-id'] === id)).toBe(true);

    expect((await call(operator, 'DELETE', '/v1/admin/webhooks/endpoints/billing')).statusCode).toBe(204);
    expect((await call(operator, 'GET', '/v1/admin/webhooks/endpoints')).json<{ endpoints: unknown[] }>().endpoints).toEqual([]);
    const gone = await deliver('/v1/hooks/platform/billing');
    expect([gone.statusCode, codeOf(gone)]).toEqual([404, 'WEBHOOK_ENDPOINT_NOT_FOUND']);

    const actions = await platformActions();
    for (const a of ['webhook.endpoint.created', 'webhook.secret.added', 'webhook.endpoint.updated', 'webhook.destination_secret.rotated', 'webhook.event.redelivered', 'webhook.endpoint.deleted']) expect(actions).toContain(a);
  });

  it('attack: a signed-in user who is not an operator (an org owner) is refused every platform route — 403 FORBIDDEN', async () => {
    const probes: [string, string, unknown?][] = [
      ['POST', '/v1/admin/webhooks/endpoints', { name: 'evil', provider: 'github' }],
      ['GET', '/v1/admin/webhooks/endpoints'],
      ['PATCH', '/v1/admin/webhooks/endpoints/evil', { destinationUrl: null }],
      ['DELETE', '/v1/admin/webhooks/endpoints/evil'],
      ['POST', '/v1/admin/webhooks/endpoints/evil/secrets', { secret: 'abcdefghij' }],
      ['POST', '/v1/admin/webhooks/endpoints/evil/destination-secret', {}],
      ['GET', '/v1/admin/webhooks/events'],
      ['GET', `/v1/admin/webhooks/events/${randomUUID()}`],
      ['POST', `/v1/admin/webhooks/events/${randomUUID()}/redeliver`, {}],
    ];
    for (const [method, url, payload] of probes) {
      const res = await call(orgUser, method as 'GET', url, payload);
      expect([method, url, res.statusCode, codeOf(res)]).toEqual([method, url, 403, 'FORBIDDEN']);
    }
    const none = await t.app.inject({ method: 'GET', url: '/v1/admin/webhooks/endpoints' });
    expect(none.statusCode).toBe(401);
  });

  it('attack: cross-tenant probes — an org admin cannot reach platform events through the org API, nor an operator org events through the platform API', async () => {
    expect((await call(operator, 'POST', '/v1/admin/webhooks/endpoints', { name: 'probe', provider: 'github' })).statusCode).toBe(201);
    expect((await call(operator, 'POST', '/v1/admin/webhooks/endpoints/probe/secrets', { secret: SECRET })).statusCode).toBe(201);
    const platformEvent = (await deliver('/v1/hooks/platform/probe')).json<{ id: string }>().id;
    expect((await call(orgUser, 'POST', `/v1/orgs/${org}/webhooks/endpoints`, { name: 'probe', provider: 'github' })).statusCode).toBe(201);
    expect((await call(orgUser, 'POST', `/v1/orgs/${org}/webhooks/endpoints/probe/secrets`, { secret: SECRET })).statusCode).toBe(201);
    const orgEvent = (await deliver(`/v1/hooks/${org}/probe`)).json<{ id: string }>().id;

    // The org API with the org's own id does not see the platform's event (same endpoint name).
    const viaOrg = await call(orgUser, 'GET', `/v1/orgs/${org}/webhooks/events/${platformEvent}`);
    expect([viaOrg.statusCode, codeOf(viaOrg)]).toEqual([404, 'WEBHOOK_EVENT_NOT_FOUND']);
    const redeliverViaOrg = await call(orgUser, 'POST', `/v1/orgs/${org}/webhooks/events/${platformEvent}/redeliver`, {});
    expect([redeliverViaOrg.statusCode, codeOf(redeliverViaOrg)]).toEqual([404, 'WEBHOOK_EVENT_NOT_FOUND']);
    // The org API addressed at the platform tenant's id: not an org the user is in.
    const platformAsOrg = await call(orgUser, 'GET', `/v1/orgs/${PLATFORM_TENANT_ID}/webhooks/events`);
    expect([platformAsOrg.statusCode, codeOf(platformAsOrg)]).toEqual([404, 'NOT_FOUND']);
    // The operator's platform API does not reach an org's event or endpoint.
    const viaPlatform = await call(operator, 'GET', `/v1/admin/webhooks/events/${orgEvent}`);
    expect([viaPlatform.statusCode, codeOf(viaPlatform)]).toEqual([404, 'WEBHOOK_EVENT_NOT_FOUND']);
    const listed = (await call(operator, 'GET', '/v1/admin/webhooks/events')).json<{ events: { id: string }[] }>().events.map((e) => e.id);
    expect(listed).toContain(platformEvent);
    expect(listed).not.toContain(orgEvent);
    // An operator is not a member of the org: the org API refuses them.
    const operatorOnOrg = await call(operator, 'GET', `/v1/orgs/${org}/webhooks/events`);
    expect([operatorOnOrg.statusCode, codeOf(operatorOnOrg)]).toEqual([404, 'NOT_FOUND']);
  });
});

describe('data-key rotation of the platform tenant', () => {
  it('gatehouse keys rotate dek re-seals platform webhook secrets and payloads: nothing stays under the retired key, and the platform event still reads and verifies', async () => {
    expect((await call(operator, 'POST', '/v1/admin/webhooks/endpoints', { name: 'rotated', provider: 'github' })).statusCode).toBe(201);
    expect((await call(operator, 'POST', '/v1/admin/webhooks/endpoints/rotated/secrets', { secret: SECRET })).statusCode).toBe(201);
    const id = (await deliver('/v1/hooks/platform/rotated')).json<{ id: string }>().id;
    const sealed = async (): Promise<string[]> => {
      const r = await t.node.db.withTenant(PLATFORM_TENANT_ID, (tx) =>
        tx.query<{ v: string }>(
          `select destination_secret_sealed as v from webhook_endpoints union all select secret_sealed from webhook_secrets union all select payload_sealed from webhook_events`,
        ),
      );
      return r.rows.map((row) => row.v);
    };
    const before = await sealed();
    const oldDeks = new Set(before.map((v) => decodeEnvelope(v).header.dekId));
    const columns = SEALED_COLUMNS;
    const result = await rotateDeks({ db: t.node.db, keyring: t.node.keyring, columns, tenantId: PLATFORM_TENANT_ID });
    expect(result.resealed).toBeGreaterThanOrEqual(before.length);
    const states = await t.node.db.withTenant(PLATFORM_TENANT_ID, (tx) => tx.query<{ id: string; state: string }>('select id, state from data_keys'));
    for (const dek of oldDeks) expect(states.rows.find((r) => r.id === dek)?.state).toBe('retired');
    const after = await sealed();
    expect(after.filter((v) => oldDeks.has(decodeEnvelope(v).header.dekId))).toEqual([]);
    expect(await scanSealedColumns(t.node.db, t.node.keyring, columns)).toEqual([]);
    const read = await call(operator, 'GET', `/v1/admin/webhooks/events/${id}`);
    expect(read.statusCode).toBe(200);
    // The re-sealed provider secret still verifies a new delivery.
    expect((await deliver('/v1/hooks/platform/rotated')).statusCode).toBe(200);
  });
});
