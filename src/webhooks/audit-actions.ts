/**
 * The audit actions of inbound webhooks (AUDIT-1), in the org's log or the platform log for platform
 * endpoints: endpoints, their secrets, redeliveries.
 */
export const WEBHOOK_AUDIT_ACTIONS = [
  'webhook.endpoint.created',
  'webhook.endpoint.updated',
  'webhook.endpoint.deleted',
  'webhook.secret.added',
  'webhook.secret.removed',
  'webhook.destination_secret.rotated',
  'webhook.event.redelivered',
] as const;
