/**
 * The monthly limit's counter rebuild (GW-1) on the memory kv, against a stand-in database that
 * answers the key's recorded calls: a missing counter is seeded from the usage records plus this
 * node's unwritten calls, once for many concurrent calls, and never from zero.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../../src/store/db-types.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { isGatewayError } from '../../src/gateway/errors.ts';
import { createMonthlyLimit } from '../../src/gateway/monthly-limit.ts';

const ORG = '11111111-1111-4111-8111-111111111111';
const NOW = Date.UTC(2026, 10, 22, 12, 0, 0);
const silent = pino({ level: 'silent' });

function recordsDb(calls: number): { db: Db; reads: { n: number } } {
  const reads = { n: 0 };
  const tx: Queryable = {
    query: async <Row>() => {
      reads.n++;
      return { rows: [{ calls: String(calls) }] as Row[], rowCount: 1 };
    },
  };
  const db = { withTenant: async <T>(_t: string, fn: (q: Queryable) => Promise<T>) => fn(tx) } as unknown as Db;
  return { db, reads };
}

let kv: Kv | undefined;
afterEach(async () => {
  await kv?.close();
  kv = undefined;
});

async function outcome(p: Promise<void>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return isGatewayError(err) || err instanceof Error ? (err as { code?: string }).code ?? 'error' : 'error';
  }
}

describe('monthly limit rebuild', () => {
  it('attack: counter lost with 2 calls recorded and 1 unwritten at a limit of 3: the next call is refused MONTHLY_LIMIT_REACHED', async () => {
    kv = createMemoryKv();
    const { db } = recordsDb(2);
    const count = createMonthlyLimit({ kv, db, logger: silent, onStoreError: 'closed', unwrittenCalls: () => 1 });
    expect(await outcome(count({ id: 'key0000000000001', tenantId: ORG, monthlyLimit: 3 }, NOW))).toBe('MONTHLY_LIMIT_REACHED');
  });

  it('attack: 50 concurrent calls on a lost counter with 4 of 10 used: exactly 6 pass, and the records are read once', async () => {
    kv = createMemoryKv();
    const { db, reads } = recordsDb(4);
    const count = createMonthlyLimit({ kv, db, logger: silent, onStoreError: 'closed', unwrittenCalls: () => 0 });
    const results = await Promise.all(Array.from({ length: 50 }, () => outcome(count({ id: 'key0000000000002', tenantId: ORG, monthlyLimit: 10 }, NOW))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(6);
    expect(results.filter((r) => r === 'MONTHLY_LIMIT_REACHED')).toHaveLength(44);
    expect(reads.n).toBe(1);
  });

  it('a counter present is counted on without reading the records', async () => {
    kv = createMemoryKv();
    const { db, reads } = recordsDb(1_000);
    await kv.set('gw:calls:key0000000000003:2026-11', '1', 60_000);
    const count = createMonthlyLimit({ kv, db, logger: silent, onStoreError: 'closed', unwrittenCalls: () => 0 });
    expect(await outcome(count({ id: 'key0000000000003', tenantId: ORG, monthlyLimit: 3 }, NOW))).toBe('ok');
    expect(reads.n).toBe(0);
  });

  it('a call the key\'s own limit refuses is given back to the client-token subject\'s monthly count (GW-6)', async () => {
    kv = createMemoryKv();
    const { db } = recordsDb(0);
    const count = createMonthlyLimit({ kv, db, logger: silent, onStoreError: 'closed', unwrittenCalls: () => 0 });
    const key = { id: 'key0000000000004', tenantId: ORG, monthlyLimit: 1, delegation: { subject: 'bot-1', monthlyCallLimit: 5 } };
    expect(await outcome(count(key, NOW))).toBe('ok');
    for (let i = 0; i < 3; i++) expect(await outcome(count(key, NOW))).toBe('MONTHLY_LIMIT_REACHED');
    expect(await kv.get(`gw:calls:key0000000000004:sub:${Buffer.from('bot-1').toString('base64url')}:2026-11`)).toBe('1');
  });
});
