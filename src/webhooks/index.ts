/**
 * Inbound webhooks (EDGE-6) as a module: endpoints and their sealed secrets, the verifier the
 * `webhook` guard calls, the event store, the relay to each org's destination, and their jobs
 * (retrying due deliveries, pruning old events and replay records).
 */
import { randomBytes } from 'node:crypto';
import { Counter } from 'prom-client';
import { AUDIT } from '../audit/index.ts';
import { defineModule, hook, moduleRef, type JobDef } from '../server/module.ts';
import { forEachTenant } from '../store/tenant-sweep.ts';
import { TRUST, TRUST_CHECKS } from '../trust/index.ts';
import type { SealedColumn } from '../server/route.ts';
import { webhookError } from './errors.ts';
import { createEndpoints, type Endpoints } from './endpoints.ts';
import { createEndpointCache, type EndpointCache } from './endpoint-cache.ts';
import { createEventStore, type EventStore } from './events.ts';
import { createRelay, destinationRefusal, type Relay } from './relay.ts';
import { createEndpointVerifier, createWebhooksFeature, WEBHOOK_GUARD_PROVIDER } from './routes.ts';
import { webhooksTrustCheck } from './trust-check.ts';
import { WEBHOOK_AUDIT_ACTIONS } from './audit-actions.ts';

export { PROVIDER_KINDS, type ProviderKind } from './providers.ts';

export interface Webhooks {
  endpoints: Endpoints;
  /** This node's ingest cache of endpoints (its size, for tests and metrics). */
  cache: Pick<EndpointCache, 'size'>;
  events: EventStore;
  relay: Relay;
}

export const WEBHOOKS = moduleRef<Webhooks>('webhooks');

export const WEBHOOKS_SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'webhook_endpoints', column: 'destination_secret_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
  { table: 'webhook_endpoints', column: 'verify_token_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
  { table: 'webhook_secrets', column: 'secret_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
  { table: 'webhook_events', column: 'payload_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
];

/**
 * Reads the overrides `webhookResolver` (an EgressResolver for the relay's DNS, tests) and `nodeId`.
 */
export const webhooksModule = defineModule({
  ref: WEBHOOKS,
  dependsOn: [AUDIT, TRUST],
  auditActions: WEBHOOK_AUDIT_ACTIONS,
  sealedColumns: WEBHOOKS_SEALED_COLUMNS,
  create: async (ctx) => {
    const settings = ctx.config.webhooks;
    const audit = ctx.use(AUDIT);
    const nodeId = (ctx.overrides.nodeId as string | undefined) ?? `${process.env.HOSTNAME ?? 'node'}-${randomBytes(3).toString('hex')}`;
    const checkDestination = (url: string): void => {
      if (destinationRefusal(new URL(url), settings.relay)) throw webhookError('WEBHOOK_DESTINATION_NOT_ALLOWED');
    };
    // Bound once the cache exists (it loads through endpoints): every change evicts the endpoint on every node.
    const bound: { cache?: EndpointCache } = {};
    const endpoints = createEndpoints({ db: ctx.db, keyring: ctx.keyring, audit, now: ctx.now, limits: settings, checkDestination, onChange: async (tenantId, name) => bound.cache?.evict(tenantId, name) });
    const endpointCache = await createEndpointCache({ kv: ctx.kv, logger: ctx.logger, now: ctx.now, ttlMs: settings.endpointCacheSeconds * 1000, maxEntries: settings.endpointCacheEntries, load: endpoints.loadForVerify });
    bound.cache = endpointCache;
    const events = createEventStore({ db: ctx.db, keyring: ctx.keyring, audit, now: ctx.now, replayDays: settings.replayDays });
    const resolve = ctx.overrides.webhookResolver as Parameters<typeof createRelay>[0]['resolve'];
    const relay = createRelay({ db: ctx.db, keyring: ctx.keyring, logger: ctx.logger, now: ctx.now, settings: settings.relay, nodeId, ...(resolve ? { resolve } : {}) });
    const received = new Counter({ name: 'gatehouse_webhooks_received_total', help: 'Webhooks verified and stored, by provider.', labelNames: ['provider'] as const, registers: [] });
    const refused = new Counter({ name: 'gatehouse_webhooks_refused_total', help: 'Webhooks refused, by provider and reason (error code).', labelNames: ['provider', 'reason'] as const, registers: [] });
    const routeDeps = {
      endpoints,
      lookup: (tenantId: string, name: string) => endpointCache.get(tenantId, name),
      events,
      bodyLimitBytes: settings.bodyLimitBytes,
      toleranceSeconds: settings.toleranceSeconds,
      perEndpointPerMinute: settings.perEndpointPerMinute,
      now: ctx.now,
      refused: (provider: string, reason: string) => refused.inc({ provider, reason }),
      received: (provider: string) => received.inc({ provider }),
      kick: () => relay.kick(),
    };
    const jobs: JobDef[] = [
      {
        name: 'webhooks.redeliver',
        schedule: '*/15 * * * * *',
        summary: 'Delivers relayed events whose next attempt is due (retries with backoff; dead letter after webhooks.relay.maxAttempts).',
        run: async () => ({ attempted: await relay.drain() }),
      },
      {
        name: 'webhooks.prune',
        schedule: '23 4 * * *',
        summary: 'Removes events (and their attempts) older than webhooks.retentionDays and replay records past webhooks.replayDays.',
        // Per tenant (forEachTenant: one transaction each, in the tenant's context): forced RLS hides
        // every row from an owner that is no superuser, so an owner-wide delete removed nothing.
        run: async ({ now, signal }) => {
          const at = new Date(now());
          const before = new Date(at.getTime() - settings.retentionDays * 86_400_000);
          let events = 0;
          let replays = 0;
          const tenants = await forEachTenant(
            ctx.db,
            async (_tenantId, tx) => {
              events += (await tx.query('delete from webhook_events where received_at < $1', [before])).rowCount;
              replays += (await tx.query('delete from webhook_replays where expires_at < $1', [at])).rowCount;
            },
            { signal },
          );
          return { events, replays, tenants };
        },
      },
    ];
    return {
      api: { endpoints, events, relay, cache: endpointCache },
      feature: { ...createWebhooksFeature(routeDeps), sealedColumns: WEBHOOKS_SEALED_COLUMNS },
      verifiers: { webhook: { [WEBHOOK_GUARD_PROVIDER]: createEndpointVerifier(routeDeps) } },
      metrics: [received, refused, ...relay.metrics],
      hooks: [hook(TRUST_CHECKS, webhooksTrustCheck)],
      jobs,
      close: async () => {
        await relay.close();
        await endpointCache.close();
      },
    };
  },
});
