/**
 * Assembles a running node from the configuration: storage (migrated), kv, logger, server.
 * Shared by `start` and the test factory so both run the same wiring.
 */
import { CryptoError } from '../crypto/errors.ts';
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { secretValues } from '../config/load.ts';
import { createLiveConfig, type ConfigSource, type LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import { FEATURE_MODULES } from '../features.ts';
import { assertRoutesDeclared, buildApp } from '../server/app.ts';
import { createLogger } from '../server/logger.ts';
import type { FeatureModule, JobDef, ModuleRef } from '../server/module.ts';
import { createModules, type CreatedModules } from '../server/module-runtime.ts';
import type { Feature, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import { openStorage } from './storage.ts';
import { createKv, reportToLogger } from '../store/kv/index.ts';
import { createKeyring, type Keyring } from '../keyring/keyring.ts';
import { createSigningKeys, type SigningKeys } from '../keyring/signing-keys.ts';
import { kekSourceFromConfig } from '../keyring/source.ts';
import { assertKeyringOpensDatabase, refuseNewKeyFileForExistingData, wrappedDataKeys } from './key-check.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';
import { IDENTITY, type Identity, type Mailer } from '../identity/index.ts';
import type { Kv } from '../store/kv/types.ts';
import { TENANCY, type Tenancy } from '../tenancy/index.ts';
import { AUDIT, type AuditLog } from '../audit/index.ts';
import { GATEWAY, type Gateway } from '../gateway/index.ts';
import { FEDERATION, type Federation } from '../federation/index.ts';

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
  /** The API of any running feature module (src/features.ts). */
  use<Api>(ref: ModuleRef<Api>): Api;
  /** Every feature the server serves, in registration order. */
  features: readonly Feature[];
  /** Every job the feature modules declared. */
  jobs: readonly JobDef[];
  /** The live configuration: what reloads (SIGHUP, `gatehouse reload`, `<VAR>_FILE` changes) swap. */
  live: LiveConfig;
  /** Closes the server (in-flight requests finish), then the modules in reverse order, kv and storage, then the data-dir lock. */
  close: () => Promise<void>;
  /** Records the listening URL in the data-dir lock, for CLI commands. */
  announce: (url: string) => void;
}

export interface StartNodeOptions {
  config: Config;
  logger?: Logger;
  /** In-memory PGlite instead of the data directory (tests). */
  inMemory?: boolean;
  /** Replaces the feature modules of src/features.ts (tests). */
  modules?: readonly FeatureModule[];
  /** Features served beside the modules' (tests: fixture routes). */
  extraFeatures?: readonly Feature[];
  verifiers?: Verifiers;
  now?: () => number;
  defaultMetrics?: boolean;
  /** Replaces the configured transport the mail queue delivers through (tests capture mail). */
  mailer?: Mailer;
  /** Where a reload reads the configuration again (`gatehouse start`: the same file and environment). Unset: reloads are refused. */
  reloadFrom?: ConfigSource;
}

/** Opens storage and kv, applies migrations, creates the feature modules and builds the server (not yet listening). */
export async function startNode(options: StartNodeOptions): Promise<Node> {
  const { config } = options;
  const live = createLiveConfig(config, options.reloadFrom);
  // Secrets of the running configuration and of the one before a reload are scrubbed from logs.
  const logger = options.logger ?? createLogger({ level: config.log.level, knownSecrets: () => live.knownSecrets().flatMap(secretValues) });
  live.subscribe({
    apply: (next, previous) => {
      if (next.log.level !== previous.log.level) logger.level = next.log.level;
    },
  });
  const storage = await openStorage(config, { inMemory: options.inMemory === true });
  const db = storage.db;
  const now = options.now ?? Date.now;
  let kv: Kv | undefined;
  let keyring: Keyring | undefined;
  let signingKeys: SigningKeys | undefined;
  let modules: CreatedModules | undefined;
  const logCloseError = (module: string, err: unknown): void => logger.error({ err, module }, 'closing a feature module failed');
  try {
    await db.migrate();
    kv = await createKv({ redisUrl: config.kv.redisUrl, keyPrefix: config.kv.keyPrefix, onError: reportToLogger(logger) });
    keyring = await openKeyring(config, db, kv, logger, options.now);
    signingKeys = await createSigningKeys({ db, kv, keyring, ...(options.now ? { now: options.now } : {}) });
    await signingKeys.ensure();
    modules = await createModules(options.modules ?? FEATURE_MODULES, { config, live, db, kv, logger, keyring, signingKeys, now, overrides: options.mailer ? { mailer: options.mailer } : {} }, logCloseError);
    const features = [...(options.extraFeatures ?? []), ...modules.features];
    assertRoutesDeclared(features);
    const app = await buildApp({
      config,
      live,
      db,
      kv,
      logger,
      keyring,
      signingKeys,
      features,
      verifiers: { ...modules.verifiers, ...options.verifiers },
      now: options.now,
      defaultMetrics: options.defaultMetrics,
    });
    for (const metric of modules.metrics) app.gatehouse.metrics.registry.registerMetric(metric);
    modules.onServer(app);
    await app.ready();
    const open = { kv, keyring, signingKeys, modules };
    let closing: Promise<void> | undefined;
    return {
      app,
      db,
      kv,
      keyring,
      signingKeys,
      identity: modules.use(IDENTITY),
      tenancy: modules.use(TENANCY),
      audit: modules.use(AUDIT),
      gateway: modules.use(GATEWAY),
      federation: modules.use(FEDERATION),
      use: modules.use,
      features,
      jobs: modules.jobs,
      live,
      logger,
      announce: storage.announce,
      close: () => {
        closing ??= (async () => {
          // Keep-alive connections turn idle only after their in-flight request ends; sweep
          // them as they do. Once the grace period is over, work still running is stopped (AI
          // calls are told so in their client's format, and metered), then whatever is left is cut.
          const sweep = setInterval(() => app.server.closeIdleConnections(), 50);
          const deadline = setTimeout(() => {
            void open.modules
              .stop((module, err) => logger.error({ err, module }, 'stopping a feature module failed'))
              .finally(() => app.server.closeAllConnections());
          }, config.server.shutdownGraceMs);
          try {
            await app.close();
          } finally {
            clearInterval(sweep);
            clearTimeout(deadline);
            // Before storage and kv: buffered work is written and subscriptions end.
            await open.modules.close(logCloseError);
            await open.signingKeys.close().catch(() => undefined);
            await open.keyring.close().catch(() => undefined);
            await open.kv.close().catch((err: unknown) => logger.error({ err }, 'closing kv failed'));
            await storage.close().catch((err: unknown) => logger.error({ err }, 'closing storage failed'));
          }
        })();
        return closing;
      },
    };
  } catch (err) {
    await modules?.close(logCloseError);
    await signingKeys?.close().catch(() => undefined);
    await keyring?.close().catch(() => undefined);
    await kv?.close().catch(() => undefined);
    await storage.close().catch(() => undefined);
    throw err;
  }
}

/**
 * An HSM token without any KEK of this node's label gets version 1, made in the token, but only
 * for a database that holds no wrapped data key yet: a new key could never open existing ones.
 */
async function firstKekInToken(source: RemoteKekSource, db: Db): Promise<void> {
  if (!source.refresh || !source.addVersion) return;
  await source.refresh();
  if (source.versions().length > 0) return;
  const held = await wrappedDataKeys(db);
  if (held > 0) throw new CryptoError('KEK_MISSING', `the token holds no key-encryption key, but the database ${db.location} holds data keys wrapped by one (at least ${held}); a new key could not open them, so none was made`);
  await source.addVersion();
}

/**
 * Opens the keyring with the configured KEK source and limits, after checking that its keys
 * belong to this database (KEYRING_MISMATCH names the key source and the database otherwise).
 */
export async function openKeyring(config: Config, db: Db, kv: Kv, logger: Logger, now?: () => number): Promise<Keyring> {
  await refuseNewKeyFileForExistingData(config, db);
  const source = kekSourceFromConfig(config);
  // KEKs in a KMS or an HSM: every version must answer before anything starts; never a fallback to a local key.
  if ('check' in source) {
    const section = source.name === 'pkcs11' ? 'keyring.pkcs11 (module, tokenLabel, pin, keyLabel) and that the token is present' : 'keyring.kms (endpoint, region, credentials, keys) and that this node can reach the KMS';
    try {
      await firstKekInToken(source, db);
      await source.check();
    } catch (err) {
      if (!(err instanceof CryptoError)) throw err;
      throw new CryptoError(err.code, `refusing to start: ${err.message}. Check ${section}.`);
    }
  }
  const keyring = await createKeyring({
    db,
    kv,
    source,
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
