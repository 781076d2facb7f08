/**
 * Inbound webhooks (EDGE-6), each provider as its vendor signs: a valid event is accepted; a
 * missing, malformed or wrong signature, a body changed by one byte, a timestamp outside the
 * tolerance, and a replayed event id are refused with their stable codes; several secrets are
 * valid during a rotation and an expired one is not. Test events are signed with the vendors' own
 * libraries where they sign (test/webhooks/signers.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import type { SignedInUser } from '../support/users.ts';
import { makeEndpoint, orgAdmin } from './fixture.ts';
import { githubHeaders, mercadoPagoHeaders, metaHeader, paddleHeader, paddleSdkAccepts, standardHeaders, stripeHeader } from './signers.ts';

let t: TestApp;
let admin: SignedInUser;
let org: string;
let clock = Date.now();
const nowSeconds = (): number => Math.floor(clock / 1000);

const STRIPE = `whsec_${randomBytes(24).toString('hex')}`;
const STRIPE_NEXT = `whsec_${randomBytes(24).toString('hex')}`;
const PADDLE = `pdl_ntfset_${randomBytes(16).toString('hex')}`;
const META = randomBytes(16).toString('hex');
const MP = randomBytes(32).toString('hex');
const GITHUB = randomBytes(20).toString('hex');
const STANDARD = `whsec_${randomBytes(32).toString('base64')}`;
const VERIFY_TOKEN = 'meta-verify-token-123';

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'webhooks.bodyLimitBytes': 4096 }, now: () => clock });
  ({ user: admin, org } = await orgAdmin(t.app, t.mail, 'hooks-admin@example.com'));
  await makeEndpoint(t.app, admin, org, { name: 'stripe', provider: 'stripe', secrets: [STRIPE] });
  await makeEndpoint(t.app, admin, org, { name: 'paddle', provider: 'paddle', secrets: [PADDLE] });
  await makeEndpoint(t.app, admin, org, { name: 'meta', provider: 'meta', secrets: [META], verifyToken: VERIFY_TOKEN });
  await makeEndpoint(t.app, admin, org, { name: 'mp', provider: 'mercadopago', secrets: [MP] });
  await makeEndpoint(t.app, admin, org, { name: 'github', provider: 'github', secrets: [GITHUB] });
  await makeEndpoint(t.app, admin, org, { name: 'std', provider: 'standard', secrets: [STANDARD] });
});
afterAll(async () => t.close());

const post = (endpoint: string, payload: string, headers: Record<string, string>, query = '') =>
  t.app.inject({ method: 'POST', url: `/v1/hooks/${org}/${endpoint}${query}`, payload, headers: { 'content-type': 'application/json', ...headers } });
const codeOf = (res: { json: () => unknown }): string => (res.json() as { error: { code: string } }).error.code;
/** The same bytes with one character changed, outside the JSON syntax so the body still parses. */
const oneByteChanged = (body: string): string => body.replace('"amount":100', '"amount":101');

describe('Stripe (Stripe-Signature t= / v1=, signed with the stripe package)', () => {
  const body = (id: string) => `{"id":"${id}","object":"event","type":"payment_intent.succeeded","data":{"object":{"amount":100}}}`;

  it('accepts a valid event and refuses its replay with WEBHOOK_REPLAYED', async () => {
    const b = body(`evt_${randomUUID()}`);
    const ok = await post('stripe', b, stripeHeader(b, STRIPE, nowSeconds()));
    expect(ok.statusCode).toBe(200);
    // The same event again (as a replaying attacker, or a freshly signed vendor retry).
    const again = await post('stripe', b, stripeHeader(b, STRIPE, nowSeconds()));
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('WEBHOOK_REPLAYED');
  });

  it('attack: missing, malformed, wrong-secret and one-byte-changed signatures are refused with their codes', async () => {
    const b = body(`evt_${randomUUID()}`);
    expect(codeOf(await post('stripe', b, {}))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(await post('stripe', b, { 'stripe-signature': 'v1=abc' }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
    const wrong = await post('stripe', b, stripeHeader(b, `whsec_${randomBytes(24).toString('hex')}`, nowSeconds()));
    expect(wrong.statusCode).toBe(401);
    expect(codeOf(wrong)).toBe('WEBHOOK_SIGNATURE_INVALID');
    const changed = await post('stripe', oneByteChanged(b), stripeHeader(b, STRIPE, nowSeconds()));
    expect(codeOf(changed)).toBe('WEBHOOK_SIGNATURE_INVALID');
  });

  it('attack: a genuine signature with a timestamp outside the tolerance is refused', async () => {
    const b = body(`evt_${randomUUID()}`);
    const old = await post('stripe', b, stripeHeader(b, STRIPE, nowSeconds() - 301));
    expect(old.statusCode).toBe(401);
    expect(codeOf(old)).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    const future = await post('stripe', b, stripeHeader(b, STRIPE, nowSeconds() + 301));
    expect(codeOf(future)).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    // Within the tolerance the same event is accepted: it was never stored.
    expect((await post('stripe', b, stripeHeader(b, STRIPE, nowSeconds() - 299))).statusCode).toBe(200);
  });

  it('rotation: old and new secrets are both valid until the old one expires', async () => {
    const expiresAt = new Date(clock + 60_000).toISOString();
    // The current secret gets an expiry by being added again with one; the next one is added without.
    const secrets = await t.app.inject({ url: `/v1/orgs/${org}/webhooks/endpoints/stripe/secrets`, headers: admin.auth });
    const [current] = secrets.json<{ secrets: { id: string }[] }>().secrets;
    await t.app.inject({ method: 'DELETE', url: `/v1/orgs/${org}/webhooks/endpoints/stripe/secrets/${current?.id}`, headers: admin.auth });
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/webhooks/endpoints/stripe/secrets`, headers: admin.auth, payload: { secret: STRIPE, expiresAt } })).statusCode).toBe(201);
    expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/webhooks/endpoints/stripe/secrets`, headers: admin.auth, payload: { secret: STRIPE_NEXT } })).statusCode).toBe(201);
    const listed = await t.app.inject({ url: `/v1/orgs/${org}/webhooks/endpoints/stripe/secrets`, headers: admin.auth });
    expect(listed.body).not.toContain(STRIPE);
    expect(listed.body).not.toContain(STRIPE_NEXT);

    const a = body(`evt_${randomUUID()}`);
    expect((await post('stripe', a, stripeHeader(a, STRIPE, nowSeconds()))).statusCode).toBe(200);
    const b2 = body(`evt_${randomUUID()}`);
    expect((await post('stripe', b2, stripeHeader(b2, STRIPE_NEXT, nowSeconds()))).statusCode).toBe(200);
    clock += 61_000;
    const c = body(`evt_${randomUUID()}`);
    const expired = await post('stripe', c, stripeHeader(c, STRIPE, nowSeconds()));
    expect(codeOf(expired)).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect((await post('stripe', c, stripeHeader(c, STRIPE_NEXT, nowSeconds()))).statusCode).toBe(200);
  });
});

describe('Paddle Billing (Paddle-Signature ts= / h1=, checked against the Paddle SDK)', () => {
  const body = (id: string) => `{"event_id":"${id}","event_type":"transaction.completed","occurred_at":"2026-12-07T16:00:00Z","data":{"amount":100}}`;

  it('accepts a valid event (the header passes the SDK verifier too) and refuses its replay', async () => {
    const b = body(`evt_${randomUUID()}`);
    const headers = paddleHeader(b, PADDLE, Math.floor(Date.now() / 1000));
    expect(await paddleSdkAccepts(b, PADDLE, headers['paddle-signature'] as string)).toBe(true);
    expect(await paddleSdkAccepts(oneByteChanged(b), PADDLE, headers['paddle-signature'] as string)).toBe(false);
    const fresh = paddleHeader(b, PADDLE, nowSeconds());
    expect((await post('paddle', b, fresh)).statusCode).toBe(200);
    expect(codeOf(await post('paddle', b, paddleHeader(b, PADDLE, nowSeconds())))).toBe('WEBHOOK_REPLAYED');
  });

  it('attack: missing, malformed, wrong, one-byte-changed and stale signatures are refused', async () => {
    const b = body(`evt_${randomUUID()}`);
    expect(codeOf(await post('paddle', b, {}))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(await post('paddle', b, { 'paddle-signature': 'h1=00' }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
    expect(codeOf(await post('paddle', b, paddleHeader(b, 'pdl_ntfset_wrong_secret', nowSeconds())))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('paddle', oneByteChanged(b), paddleHeader(b, PADDLE, nowSeconds())))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('paddle', b, paddleHeader(b, PADDLE, nowSeconds() - 400)))).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
  });
});

describe('Meta / WhatsApp Cloud (X-Hub-Signature-256 and the hub.challenge handshake)', () => {
  const body = (n: string) => `{"object":"whatsapp_business_account","entry":[{"id":"${n}","changes":[{"field":"messages","value":{"amount":100}}]}]}`;

  it('answers the subscription handshake only with the right verify token', async () => {
    const ok = await t.app.inject({ url: `/v1/hooks/${org}/meta?hub.mode=subscribe&hub.verify_token=${VERIFY_TOKEN}&hub.challenge=1158201444` });
    expect(ok.statusCode).toBe(200);
    expect(ok.body).toBe('1158201444');
    const bad = await t.app.inject({ url: `/v1/hooks/${org}/meta?hub.mode=subscribe&hub.verify_token=wrong-token-xyz&hub.challenge=1158201444` });
    expect(bad.statusCode).toBe(403);
    expect(codeOf(bad)).toBe('WEBHOOK_VERIFY_TOKEN_INVALID');
    expect(codeOf(await t.app.inject({ url: `/v1/hooks/${org}/stripe?hub.mode=subscribe&hub.verify_token=x&hub.challenge=1` }))).toBe('WEBHOOK_NOT_A_HANDSHAKE_ENDPOINT');
  });

  it('accepts a signed payload, refuses it replayed, changed by one byte, or unsigned', async () => {
    const b = body(randomUUID());
    expect((await post('meta', b, metaHeader(b, META))).statusCode).toBe(200);
    expect(codeOf(await post('meta', b, metaHeader(b, META)))).toBe('WEBHOOK_REPLAYED');
    expect(codeOf(await post('meta', oneByteChanged(b), metaHeader(b, META)))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('meta', b, {}))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(await post('meta', b, { 'x-hub-signature-256': 'sha1=abc' }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
  });
});

describe('Mercado Pago (x-signature over id:<data.id>;request-id:<x-request-id>;ts:<ts>;)', () => {
  const body = (dataId: string) => `{"action":"payment.updated","type":"payment","data":{"id":"${dataId}"},"amount":100}`;

  it('accepts a valid notification and refuses its replay', async () => {
    const dataId = String(Date.now());
    const requestId = randomUUID();
    const b = body(dataId);
    expect((await post('mp', b, mercadoPagoHeaders(dataId, requestId, MP, nowSeconds()), `?data.id=${dataId}&type=payment`)).statusCode).toBe(200);
    expect(codeOf(await post('mp', b, mercadoPagoHeaders(dataId, requestId, MP, nowSeconds()), `?data.id=${dataId}&type=payment`))).toBe('WEBHOOK_REPLAYED');
  });

  it('attack: a signed data.id with another resource in the unsigned body, a wrong secret, a stale ts, no request id', async () => {
    const requestId = randomUUID();
    const swapped = await post('mp', body('999'), mercadoPagoHeaders('123', requestId, MP, nowSeconds()), '?data.id=123');
    expect(codeOf(swapped)).toBe('WEBHOOK_DATA_ID_MISMATCH');
    expect(codeOf(await post('mp', body('123'), mercadoPagoHeaders('124', requestId, MP, nowSeconds()), '?data.id=123'))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('mp', body('123'), mercadoPagoHeaders('123', requestId, 'wrong-secret-abc', nowSeconds()), '?data.id=123'))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('mp', body('123'), mercadoPagoHeaders('123', requestId, MP, nowSeconds() - 400), '?data.id=123'))).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    const { 'x-signature': sig } = mercadoPagoHeaders('123', requestId, MP, nowSeconds());
    expect(codeOf(await post('mp', body('123'), { 'x-signature': sig as string }, '?data.id=123'))).toBe('WEBHOOK_SIGNATURE_MISSING');
  });
});

describe('GitHub (X-Hub-Signature-256, signed with @octokit/webhooks-methods)', () => {
  const b = '{"ref":"refs/heads/main","amount":100}';

  it('accepts a delivery, refuses the same delivery id again, a changed byte and a wrong secret', async () => {
    const delivery = randomUUID();
    expect((await post('github', b, await githubHeaders(b, GITHUB, delivery))).statusCode).toBe(200);
    expect(codeOf(await post('github', b, await githubHeaders(b, GITHUB, delivery)))).toBe('WEBHOOK_REPLAYED');
    expect(codeOf(await post('github', oneByteChanged(b), await githubHeaders(b, GITHUB, randomUUID())))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('github', b, await githubHeaders(b, 'not-the-secret', randomUUID())))).toBe('WEBHOOK_SIGNATURE_INVALID');
    const { 'x-hub-signature-256': sig } = await githubHeaders(b, GITHUB, 'x');
    expect(codeOf(await post('github', b, { 'x-hub-signature-256': sig as string }))).toBe('WEBHOOK_SIGNATURE_MISSING');
  });
});

describe('Standard Webhooks (webhook-id / webhook-timestamp / webhook-signature, signed with standardwebhooks)', () => {
  const b = '{"type":"invoice.paid","data":{"amount":100}}';

  it('accepts a valid message, one of several signatures, and refuses replay, stale, changed and unsigned', async () => {
    const id = `msg_${randomUUID()}`;
    const headers = standardHeaders(b, STANDARD, id, new Date(clock));
    expect((await post('std', b, { ...headers, 'webhook-signature': `v1,${randomBytes(32).toString('base64')} ${headers['webhook-signature']}` })).statusCode).toBe(200);
    expect(codeOf(await post('std', b, standardHeaders(b, STANDARD, id, new Date(clock))))).toBe('WEBHOOK_REPLAYED');
    const other = `msg_${randomUUID()}`;
    expect(codeOf(await post('std', b, standardHeaders(b, STANDARD, other, new Date(clock - 400_000))))).toBe('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
    expect(codeOf(await post('std', oneByteChanged(b), standardHeaders(b, STANDARD, other, new Date(clock))))).toBe('WEBHOOK_SIGNATURE_INVALID');
    expect(codeOf(await post('std', b, { 'webhook-id': other, 'webhook-timestamp': String(nowSeconds()) }))).toBe('WEBHOOK_SIGNATURE_MISSING');
    expect(codeOf(await post('std', b, { 'webhook-id': other, 'webhook-timestamp': String(nowSeconds()), 'webhook-signature': 'v2,abc' }))).toBe('WEBHOOK_SIGNATURE_MALFORMED');
  });
});

describe('every endpoint', () => {
  it('attack: an oversized body is refused with 413 before any verification', async () => {
    const b = `{"id":"evt_big","pad":"${'x'.repeat(5000)}"}`;
    const res = await post('stripe', b, stripeHeader(b, STRIPE_NEXT, nowSeconds()));
    expect(res.statusCode).toBe(413);
    expect(codeOf(res)).toBe('BODY_TOO_LARGE');
  });

  it('refuses an unknown org or endpoint with 404, and an endpoint without a valid secret', async () => {
    const b = '{"id":"evt_x"}';
    expect(codeOf(await t.app.inject({ method: 'POST', url: `/v1/hooks/${randomUUID()}/stripe`, payload: b, headers: { 'content-type': 'application/json', ...stripeHeader(b, STRIPE, nowSeconds()) } }))).toBe('WEBHOOK_ENDPOINT_NOT_FOUND');
    await makeEndpoint(t.app, admin, org, { name: 'bare', provider: 'stripe', secrets: [] });
    expect(codeOf(await post('bare', b, stripeHeader(b, STRIPE, nowSeconds())))).toBe('WEBHOOK_NO_ACTIVE_SECRET');
  });

  it('stores the payload sealed, and counts received and refused events by reason', async () => {
    const { rows } = await t.node.db.asOwner((tx) => tx.query<{ payload_sealed: string }>('select payload_sealed from webhook_events limit 5'));
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.payload_sealed).not.toContain('amount');
    const metrics = await t.app.gatehouse.metrics.registry.metrics();
    expect(metrics).toMatch(/gatehouse_webhooks_received_total\{provider="stripe"\} \d+/);
    expect(metrics).toMatch(/gatehouse_webhooks_refused_total\{provider="stripe",reason="WEBHOOK_REPLAYED"\} \d+/);
    expect(t.node.use(WEBHOOKS)).toBeDefined();
  });

  it('records endpoint and secret changes in the org audit log', async () => {
    const actions = (await t.node.audit.list(org, { limit: 200 })).events.map((e) => e.action);
    expect(actions).toContain('webhook.endpoint.created');
    expect(actions).toContain('webhook.secret.added');
    expect(actions).toContain('webhook.secret.removed');
  });
});
