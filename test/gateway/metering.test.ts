/**
 * The meter's roll-up and its bound, against a stand-in database that records the usage statements
 * it is sent (and can fail them): what goes out per flush, what a failed write keeps, and which
 * calls go first when the buffer is full. The real tables are exercised in test/gateway/keys.test.ts.
 */
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import type { Db, Queryable } from '../../src/store/db-types.ts';
import { createMeter, type Meter, type UsageRecord } from '../../src/gateway/metering.ts';

const ORG = '11111111-1111-4111-8111-111111111111';
const WS = '22222222-2222-4222-8222-222222222222';
const MINUTE = Date.UTC(2026, 10, 22, 12, 0, 0);

interface Insert {
  tenantId: string;
  keys: string[];
  requests: number[];
  inputTokens: number[];
  costs: (number | null)[];
  createdAt: string[];
}

function fakeDb(): { db: Db; inserts: Insert[]; fail: { now: boolean } } {
  const inserts: Insert[] = [];
  const fail = { now: false };
  const tx = (tenantId: string): Queryable => ({
    query: async <Row>(sql: string, params?: readonly unknown[]) => {
      if (fail.now) throw new Error('database unavailable');
      if (sql.startsWith('insert into usage_records')) {
        const p = params ?? [];
        inserts.push({
          tenantId,
          keys: p[2] as string[],
          inputTokens: p[5] as number[],
          costs: p[8] as (number | null)[],
          createdAt: p[12] as string[],
          requests: p[13] as number[],
        });
      }
      return { rows: [] as Row[], rowCount: 0 };
    },
  });
  const db = {
    kind: 'pglite',
    location: 'memory',
    withTenant: async <T>(tenantId: string, fn: (q: Queryable) => Promise<T>) => fn(tx(tenantId)),
  } as unknown as Db;
  return { db, inserts, fail };
}

const call = (over: Partial<UsageRecord> = {}): UsageRecord => ({
  tenantId: ORG,
  workspaceId: WS,
  apiKeyId: 'key0000000000001',
  provider: 'platform:mock',
  model: 'mock-model',
  inputTokens: 10,
  outputTokens: 2,
  estimated: false,
  costMicroUsd: 3,
  status: 200,
  errorCode: null,
  durationMs: 4,
  at: new Date(MINUTE + 5_000),
  ...over,
});

const silent = pino({ level: 'silent' });
let meter: Meter | undefined;
afterEach(async () => {
  await meter?.close();
  meter = undefined;
});

describe('meter roll-up', () => {
  it('1,000 calls of one key and model in one minute are one row counting 1,000, written in one statement', async () => {
    const { db, inserts } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 100, batchSize: 10 });
    for (let i = 0; i < 1_000; i++) meter.record(call({ at: new Date(MINUTE + (i % 60) * 1_000) }));
    expect(meter.buffered).toBe(1_000);
    await meter.flush();
    expect(inserts).toHaveLength(1);
    expect(inserts[0]).toMatchObject({ tenantId: ORG, requests: [1_000], inputTokens: [10_000], costs: [3_000], createdAt: [new Date(MINUTE).toISOString()] });
    expect(meter.buffered).toBe(0);
  });

  it('a priced and an unpriced call of the same model stay apart, so a row is priced or not as a whole', async () => {
    const { db, inserts } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 100 });
    meter.record(call());
    meter.record(call({ costMicroUsd: null }));
    await meter.flush();
    expect(inserts[0]?.requests).toEqual([1, 1]);
    expect(inserts[0]?.costs).toEqual([3, null]);
  });

  it('a failed write keeps its calls, merged with the ones recorded since, for the next flush', async () => {
    const { db, inserts, fail } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 100 });
    meter.record(call());
    meter.record(call());
    fail.now = true;
    await meter.flush();
    expect(inserts).toHaveLength(0);
    expect(meter.buffered).toBe(2);
    meter.record(call());
    fail.now = false;
    await meter.flush();
    expect(inserts).toHaveLength(1);
    expect(inserts[0]?.requests).toEqual([3]);
    expect(meter.buffered).toBe(0);
  });

  it('over maxBuffered rows (the database down), the oldest rows go first and their calls are no longer counted as buffered', async () => {
    const { db, inserts, fail } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 3 });
    fail.now = true;
    // Five keys: five rows, one call each, oldest first.
    for (let i = 1; i <= 5; i++) meter.record(call({ apiKeyId: `key000000000000${i}` }));
    expect(meter.buffered).toBe(3);
    await meter.flush();
    expect(meter.buffered).toBe(3);
    fail.now = false;
    await meter.flush();
    expect(inserts[0]?.keys).toEqual(['key0000000000003', 'key0000000000004', 'key0000000000005']);
  });
});

describe('calls not yet written, per key and month (what a rebuilt monthly count adds)', () => {
  const KEY = 'key0000000000001';
  const MONTH = '2026-11';

  it('counted from record until their write commits, kept through a failed write, per month', async () => {
    const { db, fail } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 100 });
    meter.record(call());
    meter.record(call({ status: 502, errorCode: 'UPSTREAM_ERROR' }));
    meter.record(call({ at: new Date(Date.UTC(2026, 11, 1, 0, 0, 5)) }));
    meter.record(call({ apiKeyId: 'key0000000000002' }));
    expect(meter.unwrittenCalls(KEY, MONTH)).toBe(2);
    expect(meter.unwrittenCalls(KEY, '2026-12')).toBe(1);
    fail.now = true;
    await meter.flush();
    expect(meter.unwrittenCalls(KEY, MONTH)).toBe(2);
    fail.now = false;
    await meter.flush();
    expect(meter.unwrittenCalls(KEY, MONTH)).toBe(0);
    expect(meter.unwrittenCalls(KEY, '2026-12')).toBe(0);
  });

  it('calls dropped over maxBuffered are no longer counted as unwritten', async () => {
    const { db, fail } = fakeDb();
    meter = createMeter({ db, logger: silent, flushMs: 60_000, maxBuffered: 2 });
    fail.now = true;
    meter.record(call());
    meter.record(call({ apiKeyId: 'key0000000000002' }));
    meter.record(call({ apiKeyId: 'key0000000000003' }));
    expect(meter.unwrittenCalls(KEY, MONTH)).toBe(0);
    expect(meter.unwrittenCalls('key0000000000003', MONTH)).toBe(1);
  });
});
