/**
 * createTestApp(): the one factory for in-process server tests. Same wiring as `gatehouse start`
 * (runtime.ts) on in-memory PGlite and memory kv, with the logs captured for assertions.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { configSourceOf, loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startNode, type Node } from '../../src/cli/runtime.ts';
import { FEATURE_MODULES } from '../../src/features.ts';
import { createLogger } from '../../src/server/logger.ts';
import type { FeatureModule } from '../../src/server/module.ts';
import type { Feature, Verifiers } from '../../src/server/route.ts';
import type { MailMessage, Mailer } from '../../src/identity/mailer.ts';
import { secretValues } from '../../src/config/load.ts';

export interface TestApp {
  app: FastifyInstance;
  node: Node;
  config: Config;
  /** Mail the node sent, oldest first. */
  mail: MailMessage[];
  /** Every log line written so far, raw. */
  logText: () => string;
  close: () => Promise<void>;
}

export interface TestAppOptions {
  /** Dotted-path overrides, e.g. { 'rateLimit.enabled': false }. */
  overrides?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  extraFeatures?: readonly Feature[];
  /** Replaces the feature modules of src/features.ts (e.g. the list plus a test module). */
  modules?: readonly FeatureModule[];
  /** Feature modules served beside those of src/features.ts (tests: a module declaring test jobs). */
  extraModules?: readonly FeatureModule[];
  verifiers?: Verifiers;
  now?: () => number;
  logLevel?: string;
  /** A mail transport of the test's own (a real SMTP one); by default mail is captured in `mail`. */
  mailer?: Mailer;
  /**
   * Embedded PGlite in this data directory instead of in memory, so a second app on the same
   * directory is the same node restarted (pass the same `keyring.masterKeys` override to both).
   */
  dataDir?: string;
  /**
   * Mail is queued and sent in the background (src/identity/mail-queue.ts). By default each
   * `app.inject` waits, after its answer, until the queue has delivered what is due, so tests read
   * `mail` right after a request. `false` leaves delivery entirely to the background sender
   * (tests of the queue itself).
   */
  deliverMailAfterInject?: boolean;
  /**
   * Let the node reload: its configuration is loaded again with the same env, cwd and overrides
   * objects (mutate them, then call `node.use(TRUST).reload('api')`). The key-encryption key must
   * then be given in `overrides` or `env`, so the reloaded one is the same.
   */
  reloadable?: boolean;
  /** Send mail through the configured transport (`mail.smtpUrl`, reloadable) instead of capturing it. */
  configuredMailer?: boolean;
}

export async function createTestApp(options: TestAppOptions = {}): Promise<TestApp> {
  // A fresh key-encryption key per test app, so no key file is written anywhere; the same one on a reload.
  const freshKey = `1:${randomBytes(32).toString('base64')}`;
  const load = (): Config =>
    loadConfig({
      env: options.env ?? {},
      configFile: undefined,
      cwd: '/nonexistent-gatehouse-test-dir',
      overrides: {
        'log.level': options.logLevel ?? 'info',
        // The scheduler's timers stay off: tests run jobs themselves (node.use(JOBS).run), deterministically.
        'jobs.enabled': false,
        ...(options.env?.GATEHOUSE_KEYRING_MASTER_KEYS ? {} : { 'keyring.masterKeys': freshKey }),
        ...(options.dataDir ? { 'storage.dataDir': options.dataDir } : {}),
        ...options.overrides,
      },
    }).config;
  const config = load();
  const { logger, logText } = capturedLogger(config);
  const mail: MailMessage[] = [];
  const captured: Mailer = {
    transport: 'outbox',
    send: async (m) => {
      mail.push(m);
    },
    close: async () => undefined,
  };
  const node = await startNode({
    ...(options.configuredMailer ? {} : { mailer: options.mailer ?? captured }),
    config,
    logger,
    inMemory: options.dataDir === undefined,
    ...(options.extraFeatures ? { extraFeatures: options.extraFeatures } : {}),
    ...(options.modules || options.extraModules ? { modules: [...(options.modules ?? FEATURE_MODULES), ...(options.extraModules ?? [])] } : {}),
    verifiers: options.verifiers,
    now: options.now,
    ...(options.reloadable
      ? { reloadFrom: { load, files: () => configSourceOf({ env: options.env ?? {}, configFile: undefined, cwd: '/nonexistent-gatehouse-test-dir' }).files(), watchIntervalMs: 100 } }
      : {}),
  });
  if (options.deliverMailAfterInject !== false) deliverMailAfterInject(node.app, [node]);
  return { app: node.app, node, config, mail, logText, close: () => node.close() };
}

/**
 * Makes `app.inject` resolve only once the mail queues of `nodes` delivered what the request
 * queued (the answer itself is unchanged and was complete before): mail is read right after.
 */
export function deliverMailAfterInject(app: FastifyInstance, nodes: readonly Node[]): void {
  const inject = app.inject.bind(app);
  const patched = async (opts: InjectOptions | string) => {
    const res = await inject(opts);
    for (const node of nodes) await node.identity.mailer.flush();
    return res;
  };
  app.inject = patched as unknown as typeof app.inject;
}

/**
 * A node's logger whose lines are kept in memory (with the config's secrets redacted, as a node
 * redacts them), so a test can read what was logged.
 * @example const { logger, logText } = capturedLogger(config); ... expect(logText()).not.toContain(secret)
 */
export function capturedLogger(config: Config): { logger: ReturnType<typeof createLogger>; logText: () => string } {
  const chunks: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk.toString('utf8'));
      cb();
    },
  });
  const logger = createLogger({ level: config.log.level, destination, knownSecrets: () => secretValues(config) });
  return { logger, logText: () => chunks.join('') };
}
