import { describe, expect, it } from 'vitest';
import { createPriceTable, matchesModelPattern, priceTableSchema } from '../../src/gateway/prices.ts';

describe('prices and cost (GW-4)', () => {
  const table = createPriceTable([
    { model: 'gpt-4o-mini', inputPerMillion: '0.15', outputPerMillion: '0.6' },
    { model: 'gpt-4o*', inputPerMillion: '2.5', outputPerMillion: 10 },
    { model: 'claude-*-sonnet-*', inputPerMillion: 3, outputPerMillion: 15 },
    { model: 'free', inputPerMillion: 0, outputPerMillion: 0 },
  ]);

  it('costs in integer micro-dollars: tokens x USD per million = micro-dollars', () => {
    // 1000 * 0.15 + 200 * 0.6 = 150 + 120 = 270 micro-dollars
    expect(table.costOf('gpt-4o-mini', { inputTokens: 1000, outputTokens: 200 })).toBe(270);
    // 1_000_000 input tokens at $2.50 = $2.50 = 2_500_000 micro-dollars
    expect(table.costOf('gpt-4o-2024-08-06', { inputTokens: 1_000_000, outputTokens: 0 })).toBe(2_500_000);
    expect(table.costOf('claude-3-5-sonnet-latest', { inputTokens: 10, outputTokens: 10 })).toBe(180);
    expect(Number.isInteger(table.costOf('gpt-4o-mini', { inputTokens: 7, outputTokens: 3 }))).toBe(true);
  });

  it('rounds up, so a priced call is never metered as free', () => {
    // 1 token at $0.15/M = 0.15 micro-dollars -> 1
    expect(table.costOf('gpt-4o-mini', { inputTokens: 1, outputTokens: 0 })).toBe(1);
    expect(table.costOf('free', { inputTokens: 1_000_000, outputTokens: 1_000_000 })).toBe(0);
    expect(table.costOf('gpt-4o-mini', { inputTokens: 0, outputTokens: 0 })).toBe(0);
  });

  it('is exact where floats are not (0.1 + 0.2)', () => {
    const t = createPriceTable([{ model: 'm', inputPerMillion: '0.1', outputPerMillion: '0.2' }]);
    expect(t.costOf('m', { inputTokens: 10_000_000, outputTokens: 10_000_000 })).toBe(3_000_000);
  });

  it('prefers an exact name over patterns, the first pattern among patterns, and null for unknown models', () => {
    expect(table.priceOf('gpt-4o-mini')?.inputMicroUsdPerMillion).toBe(150_000n);
    expect(table.priceOf('gpt-4o-mini-2024')?.inputMicroUsdPerMillion).toBe(2_500_000n);
    expect(table.costOf('unknown-model', { inputTokens: 1, outputTokens: 1 })).toBeNull();
  });

  it('matches `*` globs without regular expressions', () => {
    expect(matchesModelPattern('a*', 'a')).toBe(true);
    expect(matchesModelPattern('*', 'anything')).toBe(true);
    expect(matchesModelPattern('a*b*c', 'aXbYc')).toBe(true);
    expect(matchesModelPattern('a*b*c', 'acb')).toBe(false);
    expect(matchesModelPattern('ab*ba', 'aba')).toBe(false);
    expect(matchesModelPattern('x.y', 'xzy')).toBe(false);
    expect(matchesModelPattern(`${'a*'.repeat(30)}b`, 'a'.repeat(60))).toBe(false);
  });

  it('refuses negative, exponent, too precise and non-numeric prices', () => {
    for (const bad of ['-1', '1e-7', 1e-7, '0.0000001', 'abc', '', -0.5, '10000000']) {
      expect(priceTableSchema.safeParse([{ model: 'm', inputPerMillion: bad, outputPerMillion: '1' }]).success).toBe(false);
    }
    expect(priceTableSchema.parse(undefined)).toEqual([]);
  });
});
