/**
 * Test signers: the vendors' own libraries where they can sign (Stripe's test header helper,
 * standardwebhooks, @octokit/webhooks-methods); Paddle's SDK can only verify, so Paddle headers are
 * built from its documentation and checked against the SDK; Meta and Mercado Pago publish no
 * library, so their headers follow their documented examples (cited on each).
 */
import { createHmac } from 'node:crypto';
import { sign as githubSign } from '@octokit/webhooks-methods';
import { Paddle } from '@paddle/paddle-node-sdk';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';

const stripe = new Stripe('sk_test_gatehouse');

export function stripeHeader(payload: string, secret: string, timestampSeconds: number): Record<string, string> {
  return { 'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload, secret, timestamp: timestampSeconds }) };
}

/** https://developer.paddle.com/webhooks/signature-verification: `ts=<unix>;h1=<hex HMAC-SHA256 of "<ts>:<body>">`. */
export function paddleHeader(payload: string, secret: string, timestampSeconds: number): Record<string, string> {
  const h1 = createHmac('sha256', secret).update(`${timestampSeconds}:${payload}`).digest('hex');
  return { 'paddle-signature': `ts=${timestampSeconds};h1=${h1}` };
}

/** Paddle's SDK verifier (5-second tolerance against the real clock): proves our Paddle header is the vendor's. */
export async function paddleSdkAccepts(payload: string, secret: string, header: string): Promise<boolean> {
  return new Paddle('pdl_sdbx_apikey_gatehouse_test').webhooks.isSignatureValid(payload, secret, header);
}

/** https://developers.facebook.com/docs/graph-api/webhooks/getting-started#validate-payloads: `sha256=<hex HMAC-SHA256 of the body under the app secret>`. */
export function metaHeader(payload: string, appSecret: string): Record<string, string> {
  return { 'x-hub-signature-256': `sha256=${createHmac('sha256', appSecret).update(payload).digest('hex')}` };
}

export async function githubHeaders(payload: string, secret: string, delivery: string, event = 'push'): Promise<Record<string, string>> {
  return { 'x-hub-signature-256': await githubSign(secret, payload), 'x-github-delivery': delivery, 'x-github-event': event };
}

/**
 * https://www.mercadopago.com/developers/en/docs/your-integrations/notifications/webhooks (validate origin):
 * manifest `id:<data.id>;request-id:<x-request-id>;ts:<ts>;`, `x-signature: ts=<ts>,v1=<hex HMAC-SHA256>`.
 */
export function mercadoPagoHeaders(dataId: string, requestId: string, secret: string, timestampSeconds: number): Record<string, string> {
  const manifest = `id:${dataId.toLowerCase()};request-id:${requestId};ts:${timestampSeconds};`;
  return { 'x-signature': `ts=${timestampSeconds},v1=${createHmac('sha256', secret).update(manifest).digest('hex')}`, 'x-request-id': requestId };
}

export function standardHeaders(payload: string, secret: string, id: string, at: Date): Record<string, string> {
  return { 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': new Webhook(secret).sign(id, at, payload) };
}
