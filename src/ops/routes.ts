/**
 * Operations endpoints (OPS-2, EDGE-8): liveness, readiness, Prometheus metrics,
 * security.txt (RFC 9116) with its disclosure policy, and the OpenAPI document.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { publicOriginOf } from '../config/schema.ts';
import { defineRoute, type Feature, type Services } from '../server/route.ts';

const checkState = z.enum(['ok', 'unavailable']);
const dependencyName = z.enum(['pglite', 'postgresql', 'memory', 'redis', 'kms', 'hsm']);
const readySchema = z.object({
  status: z.enum(['ready', 'not_ready']),
  /** `keys`: only when the KEKs live in a KMS or an HSM: unavailable after a call to it failed, until one succeeds. */
  checks: z.object({ storage: checkState, kv: checkState, keys: checkState.optional() }),
  /** The dependencies that did not answer, by name (e.g. ["redis"]). */
  unavailable: z.array(dependencyName),
});

/** The one error envelope (app.ts), which a 503 from the edge carries instead. */
const errorEnvelope = z.object({ error: z.object({ code: z.string(), message: z.string(), requestId: z.string() }) });

/** The name an operator knows each store by. */
function dependencyNames(services: Services): { storage: z.infer<typeof dependencyName>; kv: z.infer<typeof dependencyName> } {
  return { storage: services.db.kind === 'postgres' ? 'postgresql' : 'pglite', kv: services.kv.kind };
}

async function probe(fn: () => Promise<void>, timeoutMs: number): Promise<'ok' | 'unavailable'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error('timeout')), timeoutMs);
      }),
    ]);
    return 'ok';
  } catch {
    return 'unavailable';
  } finally {
    clearTimeout(timer);
  }
}

/** The origin clients use, for absolute URLs in security.txt. */
export function publicOrigin(services: Services): string {
  return publicOriginOf(services.config);
}

/** The RFC 9116 document: Contact, Expires (from config), Policy, Canonical, Preferred-Languages. */
export function securityTxt(services: Services): string {
  const { securityTxt: cfg } = services.config;
  const origin = publicOrigin(services);
  const expires = new Date(services.startedAt.getTime() + cfg.expiresDays * 86_400_000);
  expires.setUTCMilliseconds(0);
  const lines = [
    ...cfg.contact.map((c) => `Contact: ${c}`),
    `Expires: ${expires.toISOString().replace('.000Z', 'Z')}`,
    `Policy: ${cfg.policyUrl ?? `${origin}/security-policy`}`,
    `Preferred-Languages: ${cfg.preferredLanguages}`,
    `Canonical: ${origin}/.well-known/security.txt`,
  ];
  return lines.join('\n') + '\n';
}

let policyText: string | undefined;
function securityPolicy(): string {
  policyText ??= readFileSync(new URL('../../SECURITY.md', import.meta.url), 'utf8');
  return policyText;
}

export const opsFeature: Feature = {
  id: 'ops',
  routes: [
    defineRoute({
      method: 'GET',
      url: '/healthz',
      summary: 'Liveness: the process answers. Touches no dependency and is not rate limited, so a PostgreSQL or Redis outage never fails it.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'ops',
      unmetered: true,
      schema: { response: { 200: z.object({ status: z.literal('ok') }) } },
      handler: async () => ({ status: 'ok' as const }),
    }),
    defineRoute({
      method: 'GET',
      url: '/readyz',
      summary: 'Readiness: storage and the counter store answer (and, with KEKs in a KMS, the KMS did at its last call); 503 names the ones that do not.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'ops',
      // A 503 is either this body or, from anywhere else, the error envelope: both are valid answers.
      schema: { response: { 200: readySchema, 503: z.union([readySchema, errorEnvelope]) } },
      handler: async ({ services, reply }) => {
        const [storage, kv] = await Promise.all([probe(() => services.db.ping(), 2000), probe(() => services.kv.ping(), 2000)]);
        const names = dependencyNames(services);
        // KEKs in a KMS or an HSM: the last call's outcome (a node whose KMS or HSM stopped answering cannot open uncached data keys).
        const remote = services.keyring.remoteKeks();
        const keys = remote ? (services.keyring.kekHealthy() ? ('ok' as const) : ('unavailable' as const)) : undefined;
        const unavailable = [...(storage === 'ok' ? [] : [names.storage]), ...(kv === 'ok' ? [] : [names.kv]), ...(remote && keys === 'unavailable' ? [remote] : [])];
        const ready = unavailable.length === 0;
        reply.code(ready ? 200 : 503);
        if (!ready) reply.header('retry-after', '5');
        return { status: ready ? ('ready' as const) : ('not_ready' as const), checks: { storage, kv, ...(keys ? { keys } : {}) }, unavailable };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/metrics',
      summary: 'Prometheus metrics.',
      guard: { kind: 'metrics' },
      permission: null,
      rateCategory: 'ops',
      schema: { response: { 200: z.string() } },
      handler: async ({ services, reply }) => {
        const text = await services.metrics.metrics();
        return reply.type(services.metrics.contentType).send(text);
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/.well-known/security.txt',
      summary: 'Security contact (RFC 9116).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.string() } },
      handler: async ({ services, reply }) => reply.type('text/plain; charset=utf-8').send(securityTxt(services)),
    }),
    defineRoute({
      method: 'GET',
      url: '/security-policy',
      summary: 'The vulnerability disclosure policy (SECURITY.md).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.string() } },
      handler: async ({ reply }) => reply.type('text/markdown; charset=utf-8').send(securityPolicy()),
    }),
    defineRoute({
      method: 'GET',
      url: '/openapi.json',
      summary: 'The OpenAPI 3.1 document of this server, generated from the route schemas.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.looseObject({ openapi: z.string(), paths: z.record(z.string(), z.unknown()) }) } },
      handler: async ({ request }) => request.server.swagger() as unknown as { openapi: string; paths: Record<string, unknown> },
    }),
  ],
};
