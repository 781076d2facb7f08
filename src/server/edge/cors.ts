/** CORS only for the configured origins (EDGE-3); any other origin gets no CORS headers at all. */
import cors from '@fastify/cors';
import type { FastifyInstance } from 'fastify';

export async function registerCors(app: FastifyInstance, origins: readonly string[]): Promise<void> {
  const allowed = new Set(origins.map((o) => new URL(o).origin));
  await app.register(cors, {
    origin: (origin, cb) => {
      cb(null, origin !== undefined && allowed.has(origin));
    },
    credentials: true,
    methods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['authorization', 'content-type', 'x-api-key', 'x-csrf-token', 'idempotency-key'],
    exposedHeaders: ['x-request-id', 'ratelimit', 'ratelimit-policy', 'retry-after'],
    maxAge: 600,
    strictPreflight: true,
  });
}
