/**
 * Builds the AI gateway (GW-1..4) from the configuration: the upstream agent (allowlist and address
 * checks), the proxy with its breakers, the price table, the meter, API keys with their verifier,
 * workspace routing, the caches' eviction across nodes, and the feature with its routes.
 */
import type { Logger } from 'pino';
import type { Metric } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { createBreakerMetrics } from '../server/metrics.ts';
import type { Feature, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import { browserOriginsOf, type ApiCredentialVerifier } from './credentials.ts';
import { createApiKeys, type ApiKeys } from './keys.ts';
import { newNodeId } from './loop.ts';
import { createInflightCalls, type InflightCalls } from './inflight.ts';
import { createMeter, type Meter } from './metering.ts';
import { createMonthlyLimit } from './monthly-limit.ts';
import { createPriceTable, type PriceTable } from './prices.ts';
import { createGatewayProxy, type GatewayProxy } from './proxy.ts';
import { createGatewayFeature } from './routes.ts';
import type { AiCallStep } from './steps.ts';
import { createRouting, type Routing } from './routing.ts';
import { createUpstreamAgent } from './upstream.ts';
import { EVICT_CHANNEL, livePlatform, modelListerFor, subscribeEvictions } from './wiring.ts';

export interface Gateway {
  feature: Feature;
  verifiers: Pick<Verifiers, 'apiKey'>;
  keys: ApiKeys;
  routing: Routing;
  meter: Meter;
  proxy: GatewayProxy;
  /** The price table (`gateway.prices`): what a call costs, in micro-dollars. */
  prices: PriceTable;
  /** Prometheus metrics of the gateway (breaker state and transitions), for the server's registry. */
  metrics: Metric[];
  /** The AI calls running on this node. */
  inflight: InflightCalls;
  /**
   * Stops every AI call still running with NODE_SHUTTING_DOWN in its client's format (streams get a
   * terminal error event, unanswered JSON calls a 503 with `Retry-After`), meters what each had
   * delivered, and resolves once their last bytes are written. Called when the shutdown grace
   * period is over, before connections are cut.
   */
  stopCalls: () => Promise<void>;
  /** Waits for running calls to be metered, unsubscribes, writes buffered usage, stops the breakers and closes upstream connections. */
  close: () => Promise<void>;
}

export interface GatewayDeps {
  config: Config;
  /** The live configuration: the platform's vendor keys (`gateway.providerKeys`) are read from it per call. */
  live?: LiveConfig;
  db: Db;
  kv: Kv;
  keyring: Keyring;
  audit: AuditLog;
  logger: Logger;
  now: () => number;
  /** The steps other features add around every AI call (input guard, budgets), read per call, in run order. */
  callSteps?: () => readonly AiCallStep[];
  /** Verifiers of credentials derived from API keys (client tokens), read per call. */
  credentialVerifiers?: () => readonly ApiCredentialVerifier[];
}

/**
 * Creates the gateway; call `close` after the server stopped taking requests.
 * @example const gateway = await createGateway({ config, db, kv, keyring, audit, logger, now })
 */
export async function createGateway(deps: GatewayDeps): Promise<Gateway> {
  const { config, db, kv, keyring, audit, logger, now } = deps;
  const settings = config.gateway;
  const cacheTtlMs = settings.keyCacheSeconds * 1000;
  const agent = createUpstreamAgent(settings.upstream);
  // The gauge reads the proxy's breakers at scrape time, long after both exist.
  const breakerMetrics = createBreakerMetrics(() => proxy.breakerStates());
  const proxy = createGatewayProxy({
    dispatcher: agent,
    timeouts: settings.timeouts,
    retry: settings.retry,
    breaker: settings.breaker,
    onBreakerTransition: breakerMetrics.transition,
  });
  const prices = createPriceTable(settings.prices.map((p) => ({ ...p })));
  const meter = createMeter({ db, logger, flushMs: settings.usageFlushMs, maxBuffered: settings.usageMaxBuffered });
  const inflight = createInflightCalls();
  // An eviction this node could not publish is published again until Redis takes it.
  const evictions = createEvictionPublisher({ kv, logger, now, giveUpAfterMs: cacheTtlMs });
  // A node that may have missed evictions neither serves from its caches nor keeps anything in them.
  const cacheTrusted = (): boolean => kv.subscriptionsLive();
  const keys = createApiKeys({
    db,
    audit,
    logger,
    meter,
    now,
    cacheTtlMs,
    cacheTrusted,
    maxKeysPerWorkspace: settings.maxKeysPerWorkspace,
    publishEviction: (keyId) => evictions.publish(EVICT_CHANNEL, `key:${keyId}`),
    browserOrigins: browserOriginsOf(() => deps.live?.current() ?? config),
    ...(deps.credentialVerifiers ? { credentialVerifiers: deps.credentialVerifiers } : {}),
  });
  const routing = createRouting({
    db,
    keyring,
    audit,
    logger,
    policy: settings.upstream,
    cacheTtlMs,
    cacheTrusted,
    publishEviction: (orgId, wsId) => evictions.publish(EVICT_CHANNEL, `ws:${orgId}/${wsId}`),
  });
  // Back from a gap in the subscription: evictions may have been missed, so forget everything.
  const stopResync = kv.onSubscriptionsLive((live) => {
    if (!live) return;
    keys.clearLocal();
    routing.clearLocal();
  });

  const unsubscribers: (() => Promise<void>)[] = [];
  try {
    await subscribeEvictions(kv, keys, routing, unsubscribers);
  } catch (err) {
    stopResync();
    evictions.close();
    for (const unsubscribe of unsubscribers) await unsubscribe().catch(() => undefined);
    await meter.close().catch(() => undefined);
    proxy.close();
    await agent.close().catch(() => undefined);
    throw err;
  }

  const feature = createGatewayFeature({
    db,
    keys,
    routing,
    meter,
    proxy,
    prices,
    platform: livePlatform(settings.providers, deps.live, settings.providerKeys),
    countMonthlyCall: createMonthlyLimit({
      kv,
      db,
      logger,
      // Read per call: rateLimit.onStoreError reloads without a restart.
      get onStoreError() {
        return (deps.live?.current() ?? config).rateLimit.onStoreError;
      },
      unwrittenCalls: (keyId, month, subject) => inflight.running(keyId, month, subject) + meter.unwrittenCalls(keyId, month, subject),
    }),
    inflight,
    logger,
    now,
    bodyLimitBytes: settings.bodyLimitBytes,
    nodeId: newNodeId(),
    ...(deps.callSteps ? { callSteps: deps.callSteps } : {}),
    modelLister: modelListerFor(settings, agent, proxy, logger, now),
  });

  let closing: Promise<void> | undefined;
  return {
    feature,
    verifiers: { apiKey: keys.verify },
    keys,
    routing,
    meter,
    proxy,
    prices,
    metrics: breakerMetrics.metrics,
    inflight,
    stopCalls: () => inflight.stopAll(),
    close: () => {
      closing ??= (async () => {
        // Calls still running are stopped (a no-op when the grace period already did), and
        // metered before the meter's last write.
        await inflight.stopAll();
        stopResync();
        evictions.close();
        for (const unsubscribe of unsubscribers) await unsubscribe().catch((err: unknown) => logger.error({ err }, 'gateway unsubscribe failed'));
        await meter.close();
        proxy.close();
        await agent.close();
      })();
      return closing;
    },
  };
}
