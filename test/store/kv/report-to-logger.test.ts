/**
 * A node's kv reports errors nobody awaited (a throwing subscriber handler) through its logger,
 * which redacts secrets, never to the console; a Redis connection drop stays out (readiness says it).
 */
import { describe, expect, it } from 'vitest';
import { createMemoryKv, reportToLogger } from '../../../src/store/kv/index.ts';

describe('reportToLogger', () => {
  it('logs a throwing subscriber handler through the logger with its context, and leaves connection drops out', async () => {
    const lines: { obj: Record<string, unknown>; msg: string }[] = [];
    const logger = { error: (obj: Record<string, unknown>, msg: string) => void lines.push({ obj, msg }) };
    const kv = createMemoryKv({ onError: reportToLogger(logger as never) });
    await kv.subscribe('ch', () => {
      throw new Error('handler bug');
    });
    await kv.publish('ch', 'x');
    await new Promise((r) => setTimeout(r, 20));
    expect(lines).toHaveLength(1);
    expect(lines[0]?.msg).toBe('kv: an error nobody awaited');
    expect(String(lines[0]?.obj.context)).toContain('subscriber handler on ch');
    reportToLogger(logger as never)(new Error('ECONNRESET'), 'redis connection');
    expect(lines).toHaveLength(1);
    await kv.close();
  });
});
