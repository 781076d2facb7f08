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
import { priceTableSchema, type PriceTableInput } from '../config/gateway.ts';
import type { Usage } from './usage.ts';

// The entry schemas live with the config schema (`gateway.prices`), which validates them.
export { modelPriceSchema, priceTableSchema, type PriceTableInput } from '../config/gateway.ts';

const MICRO = 1_000_000n;

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
