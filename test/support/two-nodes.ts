/**
 * Two Gatehouse nodes sharing one scratch PostgreSQL database and Redis, as a multi-node
 * deployment runs: the setup the two-node suites share. Mail of both nodes goes to `mail`.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { startNode, type Node } from '../../src/cli/runtime.ts';
import { loadConfig } from '../../src/config/load.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { FEATURE_MODULES } from '../../src/features.ts';
import { createLogger } from '../../src/server/logger.ts';
import type { FeatureModule } from '../../src/server/module.ts';
import { deliverMailAfterInject } from './app.ts';
import { createScratchPostgresDatabase } from './pg-scratch.ts';
import { postgresTarget, redisTarget, requireUrl } from './services.ts';

const pg = postgresTarget();
const redis = redisTarget();

/** Why the two-node suites are skipped (no DATABASE_URL or REDIS_URL outside CI), or undefined. */
export const twoNodeSkipReason: string | undefined = pg.skipReason ?? redis.skipReason;

export interface TwoNodes {
  a: Node;
  b: Node;
  mail: MailMessage[];
  /** Closes both nodes and drops the scratch database; safe to call after a failed start. */
  close: () => Promise<void>;
}

export async function startTwoNodes(
  options: {
    env?: Record<string, string>;
    overrides?: Record<string, unknown>;
    /** false: mail is left to the background senders. */
    deliverMailAfterInject?: boolean;
    /** Each delivery takes this long (a slow mail server): claims of both nodes overlap more. */
    sendDelayMs?: number;
    /** A clock shared by both nodes: time-based limits stay exact however slowly the machine runs. */
    now?: () => number;
    /** Feature modules served beside those of src/features.ts on both nodes. */
    extraModules?: readonly FeatureModule[];
  } = {},
): Promise<TwoNodes> {
  const scratch = await createScratchPostgresDatabase(requireUrl(pg));
  const mail: MailMessage[] = [];
  const nodes: Node[] = [];
  const close = async (): Promise<void> => {
    for (const node of nodes) await node.close();
    await scratch.drop();
  };
  try {
    const env = {
      DATABASE_URL: scratch.url,
      REDIS_URL: requireUrl(redis),
      GATEHOUSE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`,
      // Redis outlives test runs: a prefix of this run's own keeps counters from earlier runs out.
      GATEHOUSE_KV_KEY_PREFIX: `t${randomBytes(6).toString('hex')}:`,
      ...options.env,
    };
    // The scheduler's timers stay off: tests run jobs themselves, deterministically.
    const { config } = loadConfig({ env, cwd: '/nonexistent-gatehouse-test-dir', overrides: { 'jobs.enabled': false, ...options.overrides } });
    const quiet = () => createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
    const delay = options.sendDelayMs ?? 0;
    const send = async (m: MailMessage): Promise<void> => {
      if (delay > 0) await new Promise((r) => setTimeout(r, delay));
      mail.push(m);
    };
    const mailer = { transport: 'outbox' as const, send, close: async () => undefined };
    const clock = { ...(options.now ? { now: options.now } : {}), ...(options.extraModules ? { modules: [...FEATURE_MODULES, ...options.extraModules] } : {}) };
    nodes.push(await startNode({ config, logger: quiet(), mailer, ...clock }));
    nodes.push(await startNode({ config, logger: quiet(), mailer, ...clock }));
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
  const [a, b] = nodes;
  if (!a || !b) throw new Error('two nodes did not start');
  // Mail is queued and either node may send it: a request returns once both queues delivered what is due.
  if (options.deliverMailAfterInject !== false) for (const node of nodes) deliverMailAfterInject(node.app, nodes);
  return { a, b, mail, close };
}
