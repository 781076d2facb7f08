/**
 * The budget engine below the HTTP layer (ABUSE-2): two budget instances (as two nodes) sharing one
 * kv and one database. A fast-check property over random interleavings of reserve, settle, abandon
 * (a node that never settles), bursts of concurrent reserves and counter losses (kv flushed), and
 * period boundaries with an injected clock.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBudgets, type Budgets } from '../../src/budgets/index.ts';
import { counterKey } from '../../src/budgets/engine.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace } from '../support/gateway.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const DAY = 86_400_000;
let t: TestApp;
let owner: SignedInUser;
let org: string;
let ws: string;
let clock = Date.UTC(2020, 0, 1);
let nodes: [Budgets, Budgets];

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'budgets.sweepSeconds': 3600, 'budgets.reservationTtlSeconds': 1 } });
  owner = await signUpUser(t.app, t.mail, 'budget-engine@example.com');
  ({ org, ws } = await createOrgAndWorkspace(t, owner, 'Engine'));
  const make = () =>
    createBudgets({ config: t.config, db: t.node.db, kv: t.node.kv, audit: t.node.audit, gateway: t.node.gateway, mailer: { send: async () => undefined }, logger: t.node.logger, now: () => clock });
  nodes = [await make(), await make()];
});

afterAll(async () => {
  for (const n of nodes ?? []) await n.close();
  await t?.close();
});

const request = (amount: number) => ({ orgId: org, workspaceId: ws, apiKeyId: null, amounts: { ai_tokens: amount }, requestId: null });

type Op =
  | { kind: 'reserve'; node: 0 | 1; amount: number }
  | { kind: 'burst'; amounts: number[] }
  | { kind: 'settle'; pick: number; fraction: number }
  | { kind: 'abandon'; pick: number }
  | { kind: 'flush'; n: number; amount: number };

const op: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ kind: fc.constant('reserve' as const), node: fc.constantFrom(0 as const, 1 as const), amount: fc.integer({ min: 0, max: 40 }) }),
  fc.record({ kind: fc.constant('burst' as const), amounts: fc.array(fc.integer({ min: 0, max: 40 }), { minLength: 2, maxLength: 12 }) }),
  fc.record({ kind: fc.constant('settle' as const), pick: fc.nat(), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ kind: fc.constant('abandon' as const), pick: fc.nat() }),
  fc.record({ kind: fc.constant('flush' as const), n: fc.integer({ min: 1, max: 12 }), amount: fc.integer({ min: 0, max: 40 }) }),
);

describe('reserve, settle and expire across two instances sharing a kv', () => {
  it('property: spending never passes the hard limit, refusals are exact, and settled totals equal metering after counters are lost and rebuilt', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 0, max: 150 }), fc.integer({ min: 0, max: 150 }), fc.array(op, { minLength: 1, maxLength: 25 }), async (orgLimit, wsLimit, ops) => {
        // Each run is a day of its own, so counters and ledger rows of earlier runs do not count.
        run += 1;
        clock = Date.UTC(2020, 0, 1) + run * DAY + 3_600_000;
        const [a] = nodes;
        await a.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'ai_tokens', period: 'day', hardLimit: orgLimit, softLimit: null });
        await a.definitions.set(org, owner.userId, { workspaceId: ws, apiKeyId: null, category: 'ai_tokens', period: 'day', hardLimit: wsLimit, softLimit: null });
        const limit = Math.min(orgLimit, wsLimit);
        // The period's counters exist before the first call (rebuilt from an empty ledger).
        for (const budget of await a.definitions.forOrg(org)) if (budget.category === 'ai_tokens') await a.engine.useOf(budget);
        const open: { amount: number; settle: (n: number | undefined) => Promise<void> }[] = [];
        let used = 0; // open worst cases + settled actuals, as the model sees them
        let metered = 0; // what settled calls actually used
        const reserve = async (node: 0 | 1, amount: number) => {
          try {
            const r = await nodes[node].engine.reserve(request(amount));
            open.push({ amount, settle: (n) => r.settle(n === undefined ? undefined : { ai_tokens: n }) });
            return true;
          } catch (err) {
            expect((err as { code?: string }).code).toBe('BUDGET_EXCEEDED_AI_TOKENS');
            return false;
          }
        };
        for (const o of ops) {
          if (o.kind === 'reserve') {
            const fits = used + o.amount <= limit;
            expect(await reserve(o.node, o.amount)).toBe(fits);
            if (fits) used += o.amount;
          } else if (o.kind === 'burst') {
            const admitted = await Promise.all(o.amounts.map((amount, i) => reserve((i % 2) as 0 | 1, amount)));
            used += o.amounts.reduce((s, amount, i) => s + (admitted[i] ? amount : 0), 0);
            expect(used).toBeLessThanOrEqual(limit);
            // No false refusal: use only grew during the burst, so each refused call would not have fit at the end either.
            o.amounts.forEach((amount, i) => {
              if (!admitted[i]) expect(used + amount).toBeGreaterThan(limit);
            });
          } else if (o.kind === 'settle' && open.length > 0) {
            const [r] = open.splice(o.pick % open.length, 1);
            if (!r) continue;
            const actual = Math.floor(r.amount * o.fraction);
            await r.settle(actual);
            used += actual - r.amount;
            metered += actual;
          } else if (o.kind === 'abandon' && open.length > 0) {
            // Its node dies: never settled. It stays counted until the sweep expires it.
            open.splice(o.pick % open.length, 1);
          } else if (o.kind === 'flush') {
            // kv loses the counters (Redis flushed) with reservations open, then a burst of equal
            // calls rebuilds them from the ledger while its own reservations are being decided:
            // exactly the calls that fit are admitted (those still undecided at the rebuild are
            // counted until decided: refusals only, never an overshoot).
            const day = new Date(clock).toISOString().slice(0, 10);
            for (const workspaceId of [null, ws]) await t.node.kv.del(counterKey({ tenantId: org, workspaceId, apiKeyId: null, category: 'ai_tokens', period: 'day', periodKey: day }));
            const admitted = await Promise.all(Array.from({ length: o.n }, (_, i) => reserve((i % 2) as 0 | 1, o.amount)));
            const fit = o.amount === 0 ? o.n : Math.min(o.n, Math.floor((limit - used) / o.amount));
            expect(admitted.filter(Boolean).length).toBe(fit);
            used += fit * o.amount;
          }
          expect(used).toBeLessThanOrEqual(limit);
        }
        for (const r of open.splice(0)) {
          await r.settle(r.amount);
          metered += r.amount;
        }
        // The abandoned ones expire; with no usage records they give everything back.
        await nodes[1].engine.sweep();
        for (const budget of await nodes[0].definitions.forOrg(org)) {
          expect((await nodes[0].engine.useOf(budget)).used).toBe(metered);
          const state = await nodes[1].ledger.counterState({ tenantId: org, workspaceId: budget.workspaceId, apiKeyId: null, category: 'ai_tokens', period: 'day', periodKey: new Date(clock).toISOString().slice(0, 10) });
          expect(state).toEqual({ used: metered, open: [] });
        }
      }),
      { numRuns: 40 },
    );
  });
});

describe('period boundaries (UTC, injected clock)', () => {
  it('a call reserved before midnight and settled after it counts in the day and month it started; the new period starts empty', async () => {
    const [a, b] = nodes;
    await a.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'messages', period: 'day', hardLimit: 10, softLimit: null });
    await a.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'messages', period: 'month', hardLimit: 15, softLimit: null });
    clock = Date.UTC(2030, 0, 31, 23, 59, 59, 999);
    const late = await a.engine.reserve({ ...request(0), amounts: { messages: 10 } });
    // Retry-After runs to the end of the period: one second before midnight.
    const refused = (await b.engine.reserve({ ...request(0), amounts: { messages: 1 } }).catch((e: unknown) => e)) as { code: string; headers: Record<string, string> };
    expect(refused.code).toBe('BUDGET_EXCEEDED_MESSAGES');
    expect(refused.headers['retry-after']).toBe('1');
    clock = Date.UTC(2030, 1, 1, 0, 0, 0, 500);
    await late.settle({ messages: 7 });
    const budgets = await a.definitions.forOrg(org);
    const day = budgets.find((x) => x.category === 'messages' && x.period === 'day');
    const month = budgets.find((x) => x.category === 'messages' && x.period === 'month');
    if (!day || !month) throw new Error('budgets missing');
    // February: both periods are new and empty; the reset is the next midnight and March 1st.
    expect(await a.engine.useOf(day)).toEqual({ used: 0, remaining: 10, resetAt: '2030-02-02T00:00:00.000Z' });
    expect(await a.engine.useOf(month)).toEqual({ used: 0, remaining: 15, resetAt: '2030-03-01T00:00:00.000Z' });
    const january = await a.ledger.counterState({ tenantId: org, workspaceId: null, apiKeyId: null, category: 'messages', period: 'month', periodKey: '2030-01' });
    expect(january.used).toBe(7);
    const jan31 = await a.ledger.counterState({ tenantId: org, workspaceId: null, apiKeyId: null, category: 'messages', period: 'day', periodKey: '2030-01-31' });
    expect(jan31.used).toBe(7);
    // A month-limited refusal on the last day of a month waits until the 1st, not until midnight of a later day.
    clock = Date.UTC(2030, 1, 28, 12, 0, 0);
    await a.engine.reserve({ ...request(0), amounts: { messages: 10 } });
    await a.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'messages', period: 'day', hardLimit: 100, softLimit: null });
    const monthRefusal = (await b.engine.reserve({ ...request(0), amounts: { messages: 6 } }).catch((e: unknown) => e)) as { code: string; headers: Record<string, string> };
    expect(monthRefusal.code).toBe('BUDGET_EXCEEDED_MESSAGES');
    expect(monthRefusal.headers['retry-after']).toBe(String(12 * 3600));
  });
});

describe('when the counter store cannot answer', () => {
  const failingKv = () =>
    new Proxy(t.node.kv, {
      get(target, prop, receiver) {
        if (prop === 'reserveBudget' || prop === 'settleBudget' || prop === 'seedBudget' || prop === 'readBudget') return async () => Promise.reject(new Error('kv: Redis reserveBudget failed: connection refused'));
        return Reflect.get(target, prop, receiver) as unknown;
      },
    });

  it('closed (default): the call is refused with 503 SERVICE_UNAVAILABLE and Retry-After, never treated as within budget', async () => {
    clock = Date.UTC(2031, 5, 1);
    const broken = await createBudgets({ config: t.config, db: t.node.db, kv: failingKv(), audit: t.node.audit, gateway: t.node.gateway, mailer: { send: async () => undefined }, logger: t.node.logger, now: () => clock });
    try {
      await broken.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'files', period: 'day', hardLimit: 1_000, softLimit: null });
      const err = (await broken.engine.reserve({ ...request(0), amounts: { files: 1 } }).catch((e: unknown) => e)) as { code: string; status: number; headers: Record<string, string> };
      expect(err).toMatchObject({ code: 'SERVICE_UNAVAILABLE', status: 503 });
      expect(Number(err.headers['retry-after'])).toBeGreaterThan(0);
    } finally {
      await broken.close();
    }
  });

  it('open: the call passes unchecked and is still recorded in the ledger, so rebuilt counters include it', async () => {
    clock = Date.UTC(2031, 5, 2);
    const config = { ...t.config, budgets: { ...t.config.budgets, onStoreError: 'open' as const } };
    const broken = await createBudgets({ config, db: t.node.db, kv: failingKv(), audit: t.node.audit, gateway: t.node.gateway, mailer: { send: async () => undefined }, logger: t.node.logger, now: () => clock });
    try {
      await broken.definitions.set(org, owner.userId, { workspaceId: null, apiKeyId: null, category: 'file_bytes', period: 'day', hardLimit: 1_000, softLimit: null });
      const r = await broken.engine.reserve({ ...request(0), amounts: { file_bytes: 400 } });
      await r.settle({ file_bytes: 300 }).catch(() => undefined);
      const state = await broken.ledger.counterState({ tenantId: org, workspaceId: null, apiKeyId: null, category: 'file_bytes', period: 'day', periodKey: '2031-06-02' });
      expect(state).toEqual({ used: 300, open: [] });
    } finally {
      await broken.close();
    }
  });
});
