/**
 * Builds the AI gateway (GW-1..4) from the configuration: the upstream agent (allowlist and address
 * checks), the proxy with its breakers, the price table, the meter, API keys with their verifier,
 * workspace routing, the caches' eviction across nodes, and the feature with its routes.
 */
import type { Logger } from 'pino';
import type { Metric } from 'prom-client';
import type { AuditLog } from '../audit/index.ts';
import { publicOriginOf, type Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { createBreakerMetrics } from '../server/metrics.ts';
import type { Feature, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { createEvictionPublisher } from '../store/kv/evictions.ts';
import type { Kv } from '../store/kv/types.ts';
import { isUuid, TENANCY_EVICT_CHANNEL } from '../tenancy/index.ts';
import type { ApiCredentialVerifier } from './credentials.ts';
import { createApiKeys, type ApiKeys } from './keys.ts';
import { newNodeId } from './loop.ts';
import { createInflightCalls, type InflightCalls } from './inflight.ts';
import { createMeter, type Meter } from './metering.ts';
import { createMonthlyLimit } from './monthly-limit.ts';
import { createModelLister } from './model-listing.ts';
import { createPriceTable } from './prices.ts';
import { createGatewayProxy, type GatewayProxy } from './proxy.ts';
import { createGatewayFeature } from './routes.ts';
import { orderSteps, type AiCallStep } from './steps.ts';
import { AUDIT } from '../audit/index.ts';
import { defineModule, hookPoint, moduleRef } from '../server/module.ts';
import { GATEWAY_SEALED_COLUMNS } from './routes.ts';
import { createRouting, platformProviders, type Routing } from './routing.ts';
import { createUpstreamAgent } from './upstream.ts';

/** The kv channel of gateway cache evictions: `key:<id>` or `ws:<org>/<workspace>`. */
const EVICT_CHANNEL = 'gateway:evict';
const KEY_MESSAGE = /^key:([0-9A-Za-z]{16})$/;
const WS_MESSAGE = /^ws:([0-9a-f-]{36})\/([0-9a-f-]{36})$/;

export interface Gateway {
  feature: Feature;
  verifiers: Pick<Verifiers, 'apiKey'>;
  keys: ApiKeys;
  routing: Routing;
  meter: Meter;
  proxy: GatewayProxy;
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
    browserOrigins: new Set([publicOriginOf(config), ...config.cors.origins.map((o) => new URL(o).origin)]),
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
    unsubscribers.push(
      await kv.subscribe(EVICT_CHANNEL, (message) => {
        const key = KEY_MESSAGE.exec(message);
        if (key?.[1]) keys.dropLocal(key[1]);
        const ws = WS_MESSAGE.exec(message);
        if (ws?.[1] && ws[2]) routing.dropLocal(ws[1], ws[2]);
      }),
    );
    // Tenancy announces every org, workspace and membership change: a deleted workspace or org
    // takes its keys and routing with it, on every node.
    unsubscribers.push(
      await kv.subscribe(TENANCY_EVICT_CHANNEL, (orgId) => {
        if (!isUuid(orgId)) return;
        keys.dropOrg(orgId);
        routing.dropOrg(orgId);
      }),
    );
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
    platform: platformProviders(settings.providers, settings.providerKeys),
    countMonthlyCall: createMonthlyLimit({
      kv,
      db,
      logger,
      onStoreError: config.rateLimit.onStoreError,
      unwrittenCalls: (keyId, month) => inflight.running(keyId, month) + meter.unwrittenCalls(keyId, month),
    }),
    inflight,
    logger,
    now,
    bodyLimitBytes: settings.bodyLimitBytes,
    nodeId: newNodeId(),
    ...(deps.callSteps ? { callSteps: deps.callSteps } : {}),
    modelLister: createModelLister({
      dispatcher: agent,
      logger,
      cacheTtlMs: settings.modelListCacheSeconds * 1000,
      failureTtlMs: settings.modelListFailureCacheSeconds * 1000,
      timeoutMs: settings.modelListTimeoutMs,
      // Read without making a breaker (breakerState would add one to the gauge); only on a cache miss.
      breakerOpen: (providerId) => proxy.breakerStates().some(([id, state]) => id === providerId && state === 'open'),
      now,
    }),
  });

  let closing: Promise<void> | undefined;
  return {
    feature,
    verifiers: { apiKey: keys.verify },
    keys,
    routing,
    meter,
    proxy,
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

export const GATEWAY = moduleRef<Gateway>('gateway');
/** Steps other features run around every AI call (src/gateway/steps.ts): the input guard, budgets. */
export const AI_CALL_STEPS = hookPoint<AiCallStep>('gateway.aiCallSteps');
export type { AiCall, AiCallOutcome, AiCallStep, AiCallStepResult, AiOperation } from './steps.ts';
/**
 * Verifiers of credentials derived from API keys (src/gateway/credentials.ts): a client token is
 * accepted wherever an API key is, checked against its parent key's current state.
 */
export const API_CREDENTIAL_VERIFIERS = hookPoint<ApiCredentialVerifier>('gateway.apiCredentialVerifiers');
export type { ApiCredentialVerifier, DelegatedCredential } from './credentials.ts';
export { API_KEY_SCOPES, verifiedKeyOf, type RequestKey } from './keys.ts';
export { GatewayError } from './errors.ts';
export { modelPatternSchema } from '../config/gateway.ts';

/** The AI gateway as a module. */
export const gatewayModule = defineModule({
  ref: GATEWAY,
  dependsOn: [AUDIT],
  sealedColumns: GATEWAY_SEALED_COLUMNS,
  create: async (ctx) => {
    // The steps are complete once every module was created, before the first request: read once then.
    let steps: readonly AiCallStep[] | undefined;
    let verifiers: readonly ApiCredentialVerifier[] | undefined;
    const gateway = await createGateway({
      config: ctx.config,
      db: ctx.db,
      kv: ctx.kv,
      keyring: ctx.keyring,
      audit: ctx.use(AUDIT),
      logger: ctx.logger,
      now: ctx.now,
      callSteps: () => (steps ??= orderSteps(ctx.hooks.list(AI_CALL_STEPS))),
      credentialVerifiers: () => (verifiers ??= ctx.hooks.list(API_CREDENTIAL_VERIFIERS)),
    });
    return {
      api: gateway,
      feature: gateway.feature,
      verifiers: gateway.verifiers,
      metrics: gateway.metrics,
      stop: gateway.stopCalls,
      close: gateway.close,
    };
  },
});
