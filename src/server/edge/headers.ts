/**
 * Security headers on every response, errors and 404 included (EDGE-2), through @fastify/helmet
 * plus the two it does not set (Permissions-Policy, Cache-Control).
 */
import helmet from '@fastify/helmet';
import type { FastifyInstance } from 'fastify';

export const API_CSP = "default-src 'none'; frame-ancestors 'none'";
export const PERMISSIONS_POLICY =
  'accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), payment=(), usb=(), interest-cohort=()';
export const HSTS_VALUE = 'max-age=63072000; includeSubDomains; preload';

export async function registerSecurityHeaders(app: FastifyInstance, options: { tls: boolean }): Promise<void> {
  await app.register(helmet, {
    global: true,
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
    frameguard: { action: 'deny' },
    noSniff: true,
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginOpenerPolicy: { policy: 'same-origin' },
    crossOriginResourcePolicy: { policy: 'same-origin' },
    crossOriginEmbedderPolicy: false,
    // HSTS only means something over TLS; over plain HTTP browsers ignore it anyway.
    strictTransportSecurity: options.tls ? { maxAge: 63_072_000, includeSubDomains: true, preload: true } : false,
    xPoweredBy: true,
  });
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('permissions-policy', PERMISSIONS_POLICY);
    reply.header('cache-control', 'no-store');
  });
}
