/** Error codes of inbound webhooks and the relay (EDGE-6), in the shape of src/server/error-codes.ts. */
import type { ErrorCodeInfo } from '../server/error-codes.ts';
import { AppError, registerErrorCodes } from '../server/errors.ts';

export const WEBHOOK_ERROR_CODES = {
  WEBHOOK_ENDPOINT_NOT_FOUND: { status: 404, message: 'No webhook endpoint has this address.', doc: 'The org or endpoint name in `/v1/hooks/:org/:endpoint` does not exist.' },
  WEBHOOK_SIGNATURE_MISSING: {
    status: 401,
    message: 'The webhook signature header is missing.',
    doc: 'The provider\'s signature header (`Stripe-Signature`, `Paddle-Signature`, `X-Hub-Signature-256`, `x-signature`, `webhook-signature`) or a header it needs (`x-request-id`, `X-GitHub-Delivery`, `webhook-id`, `webhook-timestamp`) was not sent.',
  },
  WEBHOOK_SIGNATURE_MALFORMED: { status: 400, message: 'The webhook signature header is malformed.', doc: 'The signature header does not have the provider\'s documented form (e.g. `t=…,v1=…` for Stripe, `ts=…;h1=…` for Paddle).' },
  WEBHOOK_SIGNATURE_INVALID: {
    status: 401,
    message: 'The webhook signature does not match.',
    doc: 'No signature in the header matches an HMAC of the exact body bytes under any of the endpoint\'s unexpired secrets: the body was changed, the secret is wrong, or the event was not sent by the provider.',
  },
  WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE: {
    status: 401,
    message: 'The webhook timestamp is too old or too far in the future.',
    doc: 'The signed timestamp differs from the server clock by more than `webhooks.toleranceSeconds` (a replayed or delayed event). The signature itself matched.',
  },
  WEBHOOK_NO_ACTIVE_SECRET: { status: 401, message: 'The webhook endpoint has no valid secret.', doc: 'Every secret of the endpoint has expired or none was added: nothing can be verified, so everything is refused. An org admin must add the provider\'s current secret.' },
  WEBHOOK_EVENT_ID_MISSING: { status: 400, message: 'The webhook has no event id.', doc: 'The verified event carries no id to refuse replays by (Stripe and Paddle: the body\'s id; Mercado Pago: `x-request-id`; GitHub: `X-GitHub-Delivery`; Standard Webhooks: `webhook-id`).' },
  WEBHOOK_REPLAYED: {
    status: 409,
    message: 'This webhook event was already received.',
    doc: 'An event with this id was already stored for this endpoint (within `webhooks.replayDays`), on this node or another. It is not stored or relayed again; a provider retrying an event whose first delivery was acknowledged sees this too.',
  },
  WEBHOOK_DATA_ID_MISMATCH: { status: 400, message: 'The notification body does not match its signed resource id.', doc: 'Mercado Pago: the body\'s `data.id` differs from the signed `data.id` query parameter (the body itself is not covered by the signature).' },
  WEBHOOK_VERIFY_TOKEN_INVALID: { status: 403, message: 'The verify token does not match.', doc: 'Meta subscription handshake: `hub.mode` is not `subscribe` or `hub.verify_token` is not the endpoint\'s verify token.' },
  WEBHOOK_NOT_A_HANDSHAKE_ENDPOINT: { status: 404, message: 'This endpoint has no subscription handshake.', doc: 'The GET handshake exists only for Meta (WhatsApp) endpoints.' },
  WEBHOOK_DESTINATION_NOT_ALLOWED: {
    status: 400,
    message: 'The destination URL is not allowed.',
    doc: 'The relay destination uses a scheme, host, port or address that `webhooks.relay` does not allow (https on 443 to a public address by default; see allowedHosts, allowedCidrs, allowInsecureHttp).',
  },
  WEBHOOK_ENDPOINT_EXISTS: { status: 409, message: 'An endpoint with this name exists.', doc: 'Endpoint names are unique per org.' },
  WEBHOOK_LIMIT_REACHED: { status: 409, message: 'Too many endpoints or secrets.', doc: 'The org has `webhooks.maxEndpointsPerOrg` endpoints, or the endpoint holds `webhooks.maxSecretsPerEndpoint` secrets: remove one first.' },
  WEBHOOK_SECRET_INVALID: { status: 400, message: 'The secret does not fit this provider.', doc: 'Standard Webhooks secrets are `whsec_` followed by base64 of at least 24 bytes; other providers\' secrets are at least 8 characters.' },
  WEBHOOK_SECRET_NOT_FOUND: { status: 404, message: 'No such secret.', doc: 'The endpoint has no secret with this id.' },
  WEBHOOK_EVENT_NOT_FOUND: { status: 404, message: 'No such event.', doc: 'The org has no stored event with this id (it may have passed `webhooks.retentionDays`).' },
} satisfies Record<string, ErrorCodeInfo>;

export type WebhookErrorCode = keyof typeof WEBHOOK_ERROR_CODES;

/** A refusal with one of the codes above. */
export function webhookError(code: WebhookErrorCode): AppError {
  return new AppError(code);
}

// Registered on import (idempotent), so a refusal can be built before the feature is served.
registerErrorCodes(WEBHOOK_ERROR_CODES);
