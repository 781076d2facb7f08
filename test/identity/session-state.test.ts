/**
 * The session-state cache (AUTH-3 revocation): kv caches what the database says, and nothing
 * kv does or fails to do can turn a revoked session live.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Db } from '../../src/store/db-types.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { createSessionStateCache } from '../../src/identity/session-state.ts';

const USER = '11111111-1111-4111-8111-111111111111';
const SESSION = '22222222-2222-4222-8222-222222222222';
const logger = pino({ level: 'silent' });

/** A database holding one session row whose state the test sets; counts reads. */
function fakeDb(initial: { revoked: boolean; status?: string }) {
  const state = { ...initial, reads: 0, fail: false, gate: undefined as Promise<void> | undefined };
  const db = {
    query: async () => {
      state.reads += 1;
      if (state.fail) throw Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
      // The row as the statement's snapshot saw it, returned after the gate opens.
      const row = { revoked_at: state.revoked ? new Date() : null, status: state.status ?? 'active' };
      if (state.gate) await state.gate;
      return { rows: [row], rowCount: 1 };
    },
  } as unknown as Db;
  return { db, state };
}

function cacheOver(db: Db, kv: Kv) {
  return createSessionStateCache({ db, kv, logger, revokedTtlMs: 60_000, liveCacheMs: 10_000 });
}

describe('session state', () => {
  it('a kv miss asks the database; its answer is cached', async () => {
    const { db, state } = fakeDb({ revoked: false });
    const cache = cacheOver(db, createMemoryKv());
    expect(await cache.stateOf(USER, SESSION)).toBe('live');
    expect(await cache.stateOf(USER, SESSION)).toBe('live');
    expect(state.reads).toBe(1);
  });

  it('attack: a token of a session revoked in the database while kv is empty (node restart, Redis flushed) -> revoked', async () => {
    const { db } = fakeDb({ revoked: true });
    expect(await cacheOver(db, createMemoryKv()).stateOf(USER, SESSION)).toBe('revoked');
  });

  it('attack: a token of a disabled or deleted user whose sessions were never marked -> revoked', async () => {
    for (const status of ['disabled', 'deleted']) {
      const { db } = fakeDb({ revoked: false, status });
      expect(await cacheOver(db, createMemoryKv()).stateOf(USER, SESSION)).toBe('revoked');
    }
  });

  it('attack: a kv that cannot answer is a miss, never "not revoked"', async () => {
    const { db, state } = fakeDb({ revoked: true });
    const kv = createMemoryKv();
    kv.get = async () => {
      throw new Error('kv: Redis get failed');
    };
    expect(await cacheOver(db, kv).stateOf(USER, SESSION)).toBe('revoked');
    expect(state.reads).toBe(1);
  });

  it('a database that cannot answer on a miss is an error for the caller, not a decision', async () => {
    const { db, state } = fakeDb({ revoked: false });
    state.fail = true;
    await expect(cacheOver(db, createMemoryKv()).stateOf(USER, SESSION)).rejects.toThrow(/ECONNREFUSED/);
  });

  it('attack: racing a reader that saw the row live just before a revocation cannot overwrite the revocation in kv', async () => {
    const { db, state } = fakeDb({ revoked: false });
    const kv = createMemoryKv();
    const cache = cacheOver(db, kv);
    let release: () => void = () => undefined;
    state.gate = new Promise<void>((r) => (release = r));
    const reader = cache.stateOf(USER, SESSION);
    // Until the reader holds the row (bounded by turns of the event loop, not by time).
    for (let turn = 0; turn < 1000 && state.reads === 0; turn++) await new Promise((r) => setImmediate(r));
    expect(state.reads).toBe(1);
    // The revocation commits and is recorded in kv while the reader still holds its stale row.
    state.revoked = true;
    await cache.markRevoked([SESSION]);
    state.gate = undefined;
    release();
    expect(await reader).toBe('live');
    expect(await cache.stateOf(USER, SESSION)).toBe('revoked');
    expect(await kv.get(`auth:ss:${SESSION}`)).toBe('revoked');
  });

  it('ids that are not ours are revoked without a database read', async () => {
    const { db, state } = fakeDb({ revoked: false });
    const cache = cacheOver(db, createMemoryKv());
    expect(await cache.stateOf(USER, "x' or 1=1 --")).toBe('revoked');
    expect(state.reads).toBe(0);
  });
});
