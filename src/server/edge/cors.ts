/** CORS only for the configured origins (EDGE-3); any other origin gets no CORS headers at all. */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

/** `origins` is read per request (the list reloads); its parsed set is kept until the list changes. */
export async function registerCors(app: FastifyInstance, origins: () => readonly string[]): Promise<void> {
  let list: readonly string[] | undefined;
  let allowed = new Set<string>();
  const current = (): Set<string> => {
    const now = origins();
    if (now !== list) {
      list = now;
      allowed = new Set(now.map((o) => new URL(o).origin));
    }
    return allowed;
  };
  await app.register(cors, {
    origin: (origin, cb) => {
      cb(null, origin !== undefined && current().has(origin));
    },
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-csrf-token', 'idempotency-key'],
    exposedHeaders: ['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after'],
    maxAge: 600,
    strictPreflight: true,
  });
}
