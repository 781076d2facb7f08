/**
 * Model prices and the cost of a call (GW-4), in integer micro-dollars: money is never a float.
 *
 * Prices are configured by the operator (vendors change them; none are built in) as USD per one
 * million tokens, with at most 6 decimals, e.g. `{ model: 'gpt-4o-mini*', inputPerMillion: '0.15',
 * outputPerMillion: '0.6' }`. A price of P USD per million tokens is P micro-dollars per token, so
 * prices are held as integer micro-dollars per million tokens (P * 10^6) and
 *
 *   cost = ceil((inputTokens * inputPrice + outputTokens * outputPrice) / 10^6)   micro-dollars
 *
 * computed with BigInt. Rounding up means a priced call is never metered as free.
 */
import { z } from 'zod';
import type { Usage } from './usage.ts';

const MICRO = 1_000_000n;
const DIGITS = /^\d+$/;

/** Integer micro-dollars per million tokens from a decimal text, or null when it is not one we accept. */
function parseMicroPerMillion(text: string): bigint | null {
  const [whole = '', fraction, ...rest] = text.split('.');
  if (rest.length > 0 || whole.length < 1 || whole.length > 7 || !DIGITS.test(whole)) return null;
  if (fraction !== undefined && (fraction.length < 1 || fraction.length > 6 || !DIGITS.test(fraction))) return null;
  // No float on the way: the digits become an integer directly.
  return BigInt(whole) * MICRO + BigInt((fraction ?? '').padEnd(6, '0'));
}

/** A price in USD per million tokens: a decimal string or number, >= 0, at most 6 decimals. */
const usdPerMillion = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const parsed = parseMicroPerMillion(typeof value === 'number' ? String(value) : value.trim());
    if (parsed === null) {
      ctx.addIssue({ code: 'custom', message: 'a price is a decimal number of USD per million tokens, at most 6 decimals and below 10 000 000' });
      return z.NEVER;
    }
    return parsed;
  });

/** One price entry: `model` is an exact model name or a pattern where `*` matches any run of characters. */
export const modelPriceSchema = z.strictObject({
  model: z.string().min(1).max(200),
  inputPerMillion: usdPerMillion,
  outputPerMillion: usdPerMillion,
});

/** The price table (config `gateway.prices`): exact names win over patterns; among patterns the first listed wins. */
export const priceTableSchema = z.array(modelPriceSchema).max(10_000).default([]);

export type PriceTableInput = z.input<typeof priceTableSchema>;

interface CompiledPrice {
  model: string;
  input: bigint;
  output: bigint;
}

/** A model's prices, in integer micro-dollars per million tokens. */
export interface ModelPrice {
  inputMicroUsdPerMillion: bigint;
  outputMicroUsdPerMillion: bigint;
}

export interface PriceTable {
  /** The price entry for `model`, or null when none matches. */
  priceOf(model: string): ModelPrice | null;
  /**
   * Cost of a call in integer micro-dollars, or null when the model has no price.
   * @example table.costOf('gpt-4o-mini', { inputTokens: 1000, outputTokens: 200, estimated: false })
   */
  costOf(model: string, usage: Pick<Usage, 'inputTokens' | 'outputTokens'>): number | null;
}

/** `*` matches any run of characters (also none); everything else literally. No regex: no ReDoS. */
export function matchesModelPattern(pattern: string, model: string): boolean {
  const parts = pattern.split('*');
  if (parts.length === 1) return pattern === model;
  const first = parts[0] ?? '';
  const last = parts[parts.length - 1] ?? '';
  if (model.length < first.length + last.length || !model.startsWith(first) || !model.endsWith(last)) return false;
  let at = first.length;
  const end = model.length - last.length;
  for (const middle of parts.slice(1, -1)) {
    const found = model.indexOf(middle, at);
    if (found === -1 || found + middle.length > end) return false;
    at = found + middle.length;
  }
  return true;
}

/**
 * Builds a price table from configuration (validated with `priceTableSchema`).
 * @example const prices = createPriceTable([{ model: 'claude-*', inputPerMillion: '3', outputPerMillion: '15' }])
 */
export function createPriceTable(entries: PriceTableInput = []): PriceTable {
  const parsed = priceTableSchema.parse(entries);
  const exact = new Map<string, CompiledPrice>();
  const patterns: CompiledPrice[] = [];
  for (const entry of parsed) {
    const compiled = { model: entry.model, input: entry.inputPerMillion, output: entry.outputPerMillion };
    if (entry.model.includes('*')) patterns.push(compiled);
    else if (!exact.has(entry.model)) exact.set(entry.model, compiled);
  }
  const find = (model: string): CompiledPrice | null => exact.get(model) ?? patterns.find((p) => matchesModelPattern(p.model, model)) ?? null;
  return {
    priceOf(model) {
      const p = find(model);
      return p ? { inputMicroUsdPerMillion: p.input, outputMicroUsdPerMillion: p.output } : null;
    },
    costOf(model, usage) {
      const p = find(model);
      if (!p) return null;
      const tokens = (n: number): bigint => BigInt(Math.max(0, Math.floor(Number.isFinite(n) ? n : 0)));
      const numerator = tokens(usage.inputTokens) * p.input + tokens(usage.outputTokens) * p.output;
      const micro = (numerator + MICRO - 1n) / MICRO;
      if (micro > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError('cost exceeds the safe integer range');
      return Number(micro);
    },
  };
}
