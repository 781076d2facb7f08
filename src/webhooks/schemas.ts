/** The request and response shapes of the webhook routes, shared by the receiving and the admin routes. */
import { z } from 'zod';
import { PROVIDER_KINDS } from './providers.ts';

export const endpointName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase letters, digits, - and _, up to 63');
export const endpointView = z.strictObject({ id: z.string(), name: z.string(), provider: z.enum(PROVIDER_KINDS), destinationUrl: z.string().nullable(), hasVerifyToken: z.boolean(), createdAt: z.string() });
export const secretView = z.strictObject({ id: z.string(), createdAt: z.string(), expiresAt: z.string().nullable(), expired: z.boolean() });
export const eventStatus = z.enum(['pending', 'delivered', 'dead', 'no_destination']);
export const eventView = z.strictObject({
  id: z.string(),
  endpoint: z.string(),
  provider: z.string(),
  eventId: z.string(),
  type: z.string().nullable(),
  receivedAt: z.string(),
  status: eventStatus,
  attempts: z.number(),
  nextAttemptAt: z.string().nullable(),
  lastError: z.string().nullable(),
  deliveredAt: z.string().nullable(),
});
export const attemptView = z.strictObject({ attempt: z.number(), at: z.string(), statusCode: z.number().nullable(), error: z.string().nullable(), durationMs: z.number(), node: z.string() });
