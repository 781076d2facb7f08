/**
 * Signature schemes of the inbound webhook providers (EDGE-6), each as its vendor documents it.
 * Pure functions over the exact body bytes, the headers and the endpoint's secrets: every
 * signature in a header is compared against every unexpired secret (a rotation keeps several
 * valid), in constant time on equal-length digests, and the timestamp is checked after the
 * signature so that a stale but genuine event says so.
 *
 * - Stripe: `Stripe-Signature: t=<unix>,v1=<hex>[,v1=…]`, HMAC-SHA256 of `<t>.<body>` keyed by the
 *   `whsec_…` secret as text (https://docs.stripe.com/webhooks#verify-manually). Id: body `id`.
 * - Paddle Billing: `Paddle-Signature: ts=<unix>;h1=<hex>[;h1=…]`, HMAC-SHA256 of `<ts>:<body>`
 *   (https://developer.paddle.com/webhooks/signature-verification). Id: body `event_id`.
 * - Meta / WhatsApp Cloud: `X-Hub-Signature-256: sha256=<hex>`, HMAC-SHA256 of the body keyed by
 *   the app secret; no timestamp, no delivery id: the id is the SHA-256 of the body, so the same
 *   payload is refused a second time (https://developers.facebook.com/docs/graph-api/webhooks/getting-started).
 * - Mercado Pago: `x-signature: ts=<ts>,v1=<hex>`, HMAC-SHA256 of the manifest
 *   `id:<data.id>;request-id:<x-request-id>;ts:<ts>;` (data.id from the query string, lowercased
 *   when alphanumeric; absent parts left out). The body is not signed, so its `data.id` must equal
 *   the signed one. Id: `x-request-id` (https://www.mercadopago.com/developers/en/docs/your-integrations/notifications/webhooks).
 * - GitHub: `X-Hub-Signature-256: sha256=<hex>` of the body; no timestamp. Id: `X-GitHub-Delivery`
 *   (https://docs.github.com/en/webhooks/using-webhooks/validating-webhook-deliveries).
 * - Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64> …`,
 *   HMAC-SHA256 of `<id>.<timestamp>.<body>` keyed by the base64 after `whsec_`
 *   (https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { WebhookErrorCode } from './errors.ts';

export const PROVIDER_KINDS = ['stripe', 'paddle', 'meta', 'mercadopago', 'github', 'standard'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** Why a webhook was refused: one of the stable error codes. */
export class WebhookRefusal extends Error {
  override readonly name = 'WebhookRefusal';
  readonly code: WebhookErrorCode;
  constructor(code: WebhookErrorCode) {
    super(code);
    this.code = code;
  }
}

export interface VerifyInput {
  raw: Buffer;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The query string, parsed (Mercado Pago signs `data.id` from it). */
  query: Readonly<Record<string, unknown>>;
  /** The body as parsed JSON. */
  body: unknown;
  /** Unexpired secrets of the endpoint, newest first. */
  secrets: readonly string[];
  nowMs: number;
  toleranceSeconds: number;
}

export interface VerifiedEvent {
  eventId: string;
  eventType: string | null;
}

const refuse = (code: WebhookErrorCode): never => {
  throw new WebhookRefusal(code);
};

function header(input: VerifyInput, name: string): string | undefined {
  const v = input.headers[name];
  const value = Array.isArray(v) ? v[0] : v;
  return value === undefined || value === '' ? undefined : value;
}

function field(body: unknown, ...path: string[]): string | null {
  let at: unknown = body;
  for (const key of path) {
    if (typeof at !== 'object' || at === null || Array.isArray(at)) return null;
    at = (at as Record<string, unknown>)[key];
  }
  if (typeof at === 'string' && at.length > 0 && at.length <= 200) return at;
  if (typeof at === 'number' && Number.isSafeInteger(at)) return String(at);
  return null;
}

const HEX64 = /^[0-9a-f]{64}$/i;

/** True when any presented digest equals any expected one; every pair is compared, in constant time. */
function anyMatch(presented: readonly Buffer[], expected: readonly Buffer[]): boolean {
  let matched = false;
  for (const p of presented) {
    for (const e of expected) {
      if (p.length === e.length && timingSafeEqual(p, e)) matched = true;
    }
  }
  return matched;
}

const hmac = (key: string | Buffer, ...parts: (string | Buffer)[]): Buffer => {
  const h = createHmac('sha256', key);
  for (const part of parts) h.update(part);
  return h.digest();
};

function checkTimestamp(seconds: number, input: VerifyInput): void {
  if (Math.abs(input.nowMs / 1000 - seconds) > input.toleranceSeconds) refuse('WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE');
}

/** Splits `k=v<sep>k=v`, keeping every value of a repeated key. */
function pairs(text: string, separator: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const part of text.split(separator)) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

const UNIX_SECONDS = /^\d{1,13}$/;

function hexDigests(values: readonly string[]): Buffer[] {
  const valid = values.filter((v) => HEX64.test(v));
  if (valid.length === 0) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  return valid.map((v) => Buffer.from(v, 'hex'));
}

function verifyStripe(input: VerifyInput): VerifiedEvent {
  const text = header(input, 'stripe-signature') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const p = pairs(text, ',');
  const t = p.get('t')?.[0];
  if (!t || !UNIX_SECONDS.test(t) || !p.get('v1')) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const presented = hexDigests(p.get('v1') ?? []);
  if (!anyMatch(presented, input.secrets.map((s) => hmac(s, `${t}.`, input.raw)))) return refuse('WEBHOOK_SIGNATURE_INVALID');
  checkTimestamp(Number(t), input);
  return { eventId: field(input.body, 'id') ?? refuse('WEBHOOK_EVENT_ID_MISSING'), eventType: field(input.body, 'type') };
}

function verifyPaddle(input: VerifyInput): VerifiedEvent {
  const text = header(input, 'paddle-signature') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const p = pairs(text, ';');
  const ts = p.get('ts')?.[0];
  if (!ts || !UNIX_SECONDS.test(ts) || !p.get('h1')) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const presented = hexDigests(p.get('h1') ?? []);
  if (!anyMatch(presented, input.secrets.map((s) => hmac(s, `${ts}:`, input.raw)))) return refuse('WEBHOOK_SIGNATURE_INVALID');
  checkTimestamp(Number(ts), input);
  return { eventId: field(input.body, 'event_id') ?? refuse('WEBHOOK_EVENT_ID_MISSING'), eventType: field(input.body, 'event_type') };
}

/** `X-Hub-Signature-256: sha256=<hex>` over the body (Meta and GitHub). */
function verifyHubSignature(input: VerifyInput): void {
  const text = header(input, 'x-hub-signature-256') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  if (!text.startsWith('sha256=')) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const presented = hexDigests([text.slice('sha256='.length)]);
  if (!anyMatch(presented, input.secrets.map((s) => hmac(s, input.raw)))) return refuse('WEBHOOK_SIGNATURE_INVALID');
}

function verifyMeta(input: VerifyInput): VerifiedEvent {
  verifyHubSignature(input);
  return { eventId: `sha256:${createHash('sha256').update(input.raw).digest('hex')}`, eventType: field(input.body, 'object') };
}

function verifyGithub(input: VerifyInput): VerifiedEvent {
  const delivery = header(input, 'x-github-delivery') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  verifyHubSignature(input);
  return { eventId: delivery.slice(0, 200), eventType: header(input, 'x-github-event')?.slice(0, 100) ?? null };
}

function verifyMercadoPago(input: VerifyInput): VerifiedEvent {
  const text = header(input, 'x-signature') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const requestId = header(input, 'x-request-id') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const p = pairs(text, ',');
  const ts = p.get('ts')?.[0];
  if (!ts || !UNIX_SECONDS.test(ts) || !p.get('v1')) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const presented = hexDigests(p.get('v1') ?? []);
  const queryId = input.query['data.id'];
  let dataId = typeof queryId === 'string' && queryId !== '' ? queryId : null;
  // The documented rule: an alphanumeric data.id is signed lowercased.
  if (dataId !== null && /^[A-Za-z0-9]+$/.test(dataId)) dataId = dataId.toLowerCase();
  const manifest = `${dataId === null ? '' : `id:${dataId};`}request-id:${requestId};ts:${ts};`;
  if (!anyMatch(presented, input.secrets.map((s) => hmac(s, manifest)))) return refuse('WEBHOOK_SIGNATURE_INVALID');
  // ts is documented in seconds; some deliveries carry milliseconds.
  const seconds = ts.length > 10 ? Number(ts) / 1000 : Number(ts);
  checkTimestamp(seconds, input);
  // The body is not signed: it must name the resource the signature names.
  const bodyId = field(input.body, 'data', 'id');
  if (bodyId !== null && (dataId === null || bodyId.toLowerCase() !== dataId.toLowerCase())) refuse('WEBHOOK_DATA_ID_MISMATCH');
  return { eventId: requestId.slice(0, 200), eventType: field(input.body, 'type') ?? field(input.body, 'action') };
}

/** The key of a `whsec_<base64>` secret, or null when it is not one. */
export function standardWebhooksKey(secret: string): Buffer | null {
  if (!secret.startsWith('whsec_')) return null;
  const b64 = secret.slice('whsec_'.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return null;
  const key = Buffer.from(b64, 'base64');
  return key.length >= 24 && key.length <= 64 ? key : null;
}

function verifyStandard(input: VerifyInput): VerifiedEvent {
  const id = header(input, 'webhook-id') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const ts = header(input, 'webhook-timestamp') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  const text = header(input, 'webhook-signature') ?? refuse('WEBHOOK_SIGNATURE_MISSING');
  if (!UNIX_SECONDS.test(ts) || id.length > 200) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const presented: Buffer[] = [];
  for (const sig of text.split(' ')) {
    const [version, b64] = sig.split(',');
    if (version === 'v1' && b64 && /^[A-Za-z0-9+/]+={0,2}$/.test(b64)) presented.push(Buffer.from(b64, 'base64'));
  }
  if (presented.length === 0) return refuse('WEBHOOK_SIGNATURE_MALFORMED');
  const keys = input.secrets.map(standardWebhooksKey).filter((k): k is Buffer => k !== null);
  if (!anyMatch(presented, keys.map((k) => hmac(k, `${id}.${ts}.`, input.raw)))) return refuse('WEBHOOK_SIGNATURE_INVALID');
  checkTimestamp(Number(ts), input);
  return { eventId: id, eventType: field(input.body, 'type') };
}

const VERIFIERS: Record<ProviderKind, (input: VerifyInput) => VerifiedEvent> = {
  stripe: verifyStripe,
  paddle: verifyPaddle,
  meta: verifyMeta,
  mercadopago: verifyMercadoPago,
  github: verifyGithub,
  standard: verifyStandard,
};

/**
 * Verifies one delivery; throws WebhookRefusal with the stable code of the first failed check.
 * @example verifyWebhook('stripe', { raw, headers, query, body, secrets, nowMs: Date.now(), toleranceSeconds: 300 })
 */
export function verifyWebhook(kind: ProviderKind, input: VerifyInput): VerifiedEvent {
  if (input.secrets.length === 0) refuse('WEBHOOK_NO_ACTIVE_SECRET');
  return VERIFIERS[kind](input);
}

/** Whether `secret` can be a secret of this provider (Standard Webhooks needs a `whsec_` key). */
export function secretFits(kind: ProviderKind, secret: string): boolean {
  if (kind === 'standard') return standardWebhooksKey(secret) !== null;
  return secret.length >= 8 && secret.length <= 512 && !/[\r\n\0]/.test(secret);
}
