import { randomBytes } from 'node:crypto';
import { describe } from 'vitest';
import { createPgliteDb } from '../../src/store/pglite.ts';
import { createPostgresDb } from '../../src/store/postgres.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import { createRedisKv } from '../../src/store/kv/redis.ts';
import { postgresTarget, redisTarget, requireUrl } from '../support/services.ts';
import { createScratchPostgresDatabase } from '../support/pg-scratch.ts';
import { keyringSharedSuite } from './keyring.shared-suite.ts';

keyringSharedSuite('PGlite + memory kv', async () => {
  const db = await createPgliteDb({ dataDir: undefined });
  // One process: both "nodes" share the in-memory bus.
  const kv = createMemoryKv();
  return { db, kvA: kv, kvB: kv, cleanup: async () => { await kv.close(); await db.close(); } };
});

const pgT = postgresTarget();
const redisT = redisTarget();
const skip = pgT.skipReason ?? redisT.skipReason;
if (skip) {
  describe.skip(`keyring on PostgreSQL + Redis: ${skip}`, () => undefined);
} else {
  keyringSharedSuite('PostgreSQL + Redis (two nodes)', async () => {
    const scratch = await createScratchPostgresDatabase(requireUrl(pgT));
    const db = await createPostgresDb({ url: scratch.url });
    const prefix = `gh-test-${randomBytes(6).toString('hex')}:`;
    const kvA = await createRedisKv(requireUrl(redisT), { keyPrefix: prefix });
    const kvB = await createRedisKv(requireUrl(redisT), { keyPrefix: prefix });
    return {
      db,
      kvA,
      kvB,
      cleanup: async () => {
        await kvA.close();
        await kvB.close();
        await db.close();
        await scratch.drop();
      },
    };
  });
}
