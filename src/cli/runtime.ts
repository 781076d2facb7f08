/**
 * Assembles a running node from the configuration: storage (migrated), kv, logger, server.
 * Shared by `start` and the test factory so both run the same wiring.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createHash } from 'node:crypto';
import { maskedConfig, secretValues } from '../config/load.ts';
import { canonicalText } from '../audit/canonical.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import type { Config } from '../config/schema.ts';
import { FEATURES } from '../features.ts';
import { assertRoutesDeclared, buildApp } from '../server/app.ts';
import { createLogger } from '../server/logger.ts';
import type { Feature, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { openStorage } from './storage.ts';
import { createKv } from '../store/kv/index.ts';
import { createKeyring, type Keyring } from '../keyring/keyring.ts';
import { createSigningKeys, type SigningKeys } from '../keyring/signing-keys.ts';
import { kekSourceFromConfig } from '../keyring/source.ts';
import { assertKeyringOpensDatabase, refuseNewKeyFileForExistingData } from './key-check.ts';
import { createIdentity, type Identity } from '../identity/index.ts';
import type { Mailer } from '../identity/mailer.ts';
import { registerMailQueueMetrics } from '../identity/mail-queue.ts';
import type { Kv } from '../store/kv/types.ts';
import { createTenancy, type Tenancy } from '../tenancy/index.ts';
import { createAuditLog, type AuditLog } from '../audit/log.ts';
import { createAuditFeature } from '../audit/routes.ts';
import { createGateway, type Gateway } from '../gateway/index.ts';
import { createFederation, registerSamlFormBody, type Federation } from '../identity/federation/index.ts';

export interface Node {
  app: FastifyInstance;
  db: Db;
  kv: Kv;
  logger: Logger;
  keyring: Keyring;
  signingKeys: SigningKeys;
  identity: Identity;
  tenancy: Tenancy;
  audit: AuditLog;
  gateway: Gateway;
  /** Enterprise SSO (OIDC and SAML connections per org). */
  federation: Federation;
  /** Every feature the server serves, in registration order. */
  features: readonly Feature[];
  /** Closes the server (in-flight requests finish), then kv and storage, then the data-dir lock. */
  close: () => Promise<void>;
  /** Records the listening URL in the data-dir lock, for CLI commands. */
  announce: (url: string) => void;
}

export interface StartNodeOptions {
  config: Config;
  logger?: Logger;
  /** In-memory PGlite instead of the data directory (tests). */
  inMemory?: boolean;
  features?: readonly Feature[];
  verifiers?: Verifiers;
  now?: () => number;
  defaultMetrics?: boolean;
  /** Replaces the configured transport the mail queue delivers through (tests capture mail). */
  mailer?: Mailer;
}

/** Opens storage and kv, applies migrations, and builds the server (not yet listening). */
export async function startNode(options: StartNodeOptions): Promise<Node> {
  const { config } = options;
  assertRoutesDeclared(options.features ?? FEATURES);
  const logger = options.logger ?? createLogger({ level: config.log.level, knownSecrets: () => secretValues(config) });
  const storage = await openStorage(config, { inMemory: options.inMemory === true });
  const db = storage.db;
  let kv: Kv | undefined;
  let keyring: Keyring | undefined;
  let signingKeys: SigningKeys | undefined;
  let identity: Identity | undefined;
  let tenancy: Tenancy | undefined;
  let gateway: Gateway | undefined;
  try {
    await db.migrate();
    kv = await createKv({ redisUrl: config.kv.redisUrl, keyPrefix: config.kv.keyPrefix });
    keyring = await openKeyring(config, db, kv, logger, options.now);
    signingKeys = await createSigningKeys({ db, kv, keyring, ...(options.now ? { now: options.now } : {}) });
    await signingKeys.ensure();
    const audit = createAuditLog({ db, keyring, signingKeys, settings: config.audit, now: options.now ?? Date.now });
    await audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'node.started', data: { configSha256: createHash('sha256').update(canonicalText(maskedConfig(config))).digest('hex') } });
    identity = createIdentity({ config, db, kv, keyring, signingKeys, audit, logger, now: options.now ?? Date.now, ...(options.mailer ? { mailer: options.mailer } : {}) });
    tenancy = await createTenancy({ config, db, kv, keyring, mailer: identity.mailer, audit, logger, now: options.now ?? Date.now, mfaSatisfied: identity.sessionHasSecondFactor });
    identity.lifecycle.check.push(tenancy.orgs.assertNotLastOwner);
    identity.lifecycle.cleanup.push(tenancy.orgs.removeUserEverywhere);
    const federation = createFederation({ config, db, kv, keyring, audit, accounts: identity.accounts, logger, now: options.now ?? Date.now, evictOrg: tenancy.authority.evictOrg });
    (identity.lifecycle.signInPolicy ??= []).push(federation.sso.enforceSsoRequired);
    identity.lifecycle.cleanup.push(federation.sso.forgetUser);
    gateway = await createGateway({ config, db, kv, keyring, audit, logger, now: options.now ?? Date.now });
    const features = [...(options.features ?? FEATURES), identity.feature, tenancy.feature, gateway.feature, federation.feature, createAuditFeature(audit)];
    const app = await buildApp({
      config,
      db,
      kv,
      logger,
      keyring,
      signingKeys,
      features,
      verifiers: { ...identity.verifiers, ...tenancy.verifiers, ...gateway.verifiers, ...options.verifiers },
      now: options.now,
      defaultMetrics: options.defaultMetrics,
    });
    registerMailQueueMetrics(app.gatehouse.metrics.registry, identity.mailer);
    // The SAML ACS receives an HTML form post; every other route keeps refusing form bodies.
    registerSamlFormBody(app);
    for (const metric of gateway.metrics) app.gatehouse.metrics.registry.registerMetric(metric);
    await app.ready();
    const openKv = kv;
    const liveKeyring = keyring;
    const openSigning = signingKeys;
    const openIdentity = identity;
    const openTenancy = tenancy;
    const openGateway = gateway;
    let closing: Promise<void> | undefined;
    return {
      app,
      db,
      kv: openKv,
      keyring: liveKeyring,
      signingKeys: openSigning,
      identity: openIdentity,
      tenancy: openTenancy,
      audit,
      gateway: openGateway,
      federation,
      features,
      logger,
      announce: storage.announce,
      close: () => {
        closing ??= (async () => {
          // Keep-alive connections turn idle only after their in-flight request ends; sweep
          // them as they do. Once the grace period is over, AI calls still running are told so in
          // their client's format and metered, and then whatever is left is cut.
          const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
          const deadline = setTimeout(() => {
            void openGateway
              .stopCalls()
              .catch((err: unknown) => logger.error({ err }, 'stopping gateway calls failed'))
              .finally(() => app.server.closeAllConnections());
          }, config.server.shutdownGraceMs);
          try {
            await app.close();
          } finally {
            clearInterval(sweep);
            clearTimeout(deadline);
            // Before storage and kv: buffered usage is written and subscriptions end.
            await openGateway.close().catch((err: unknown) => logger.error({ err }, 'closing the gateway failed'));
            await openTenancy.close().catch(() => undefined);
            await openIdentity.close().catch(() => undefined);
            await openSigning.close().catch(() => undefined);
            await liveKeyring.close().catch(() => undefined);
            await openKv.close().catch((err: unknown) => logger.error({ err }, 'closing kv failed'));
            await storage.close().catch((err: unknown) => logger.error({ err }, 'closing storage failed'));
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    await gateway?.close().catch(() => undefined);
    await tenancy?.close().catch(() => undefined);
    await identity?.close().catch(() => undefined);
    await signingKeys?.close().catch(() => undefined);
    await keyring?.close().catch(() => undefined);
    await kv?.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw err;
  }
}

/**
 * Opens the keyring with the configured KEK source and limits, after checking that its keys
 * belong to this database (KEYRING_MISMATCH names the key source and the database otherwise).
 */
export async function openKeyring(config: Config, db: Db, kv: Kv, logger: Logger, now?: () => number): Promise<Keyring> {
  await refuseNewKeyFileForExistingData(config, db);
  const keyring = await createKeyring({
    db,
    kv,
    source: kekSourceFromConfig(config),
    logger,
    minDecryptKekVersion: config.keyring.minDecryptKekVersion,
    dekMaxUses: config.keyring.dekMaxUses,
    cacheTtlMs: config.keyring.cacheTtlSeconds * 1000,
    cacheMaxEntries: config.keyring.cacheMaxEntries,
    ...(now ? { now } : {}),
  });
  try {
    await assertKeyringOpensDatabase(config, db, keyring);
  } catch (err) {
    await keyring.close().catch(() => undefined);
    throw err;
  }
  return keyring;
}
