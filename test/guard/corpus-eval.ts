/**
 * Scores the guard on a corpus file: per category, how many items the default guard (built-in
 * model, default thresholds) flagged or blocked. For attacks that is the detection rate, for
 * benign categories the false-positive rate. Shared by test/guard/corpus.test.ts and bench/guard.ts.
 */
import { readFileSync } from 'node:fs';
import { builtinModel, createGuard, type Guard } from '../../src/guard/index.ts';

export interface CorpusItem {
  id: string;
  split: string;
  label: 'attack' | 'benign';
  category: string;
  text: string;
  source: string;
  licence: string;
}

export interface CategoryRate {
  label: 'attack' | 'benign';
  items: number;
  /** Items flagged or blocked. */
  hits: number;
  /** hits / items: detection rate for attacks, false-positive rate for benign categories. */
  rate: number;
  /** Ids of misses (attacks allowed) or false positives (benign items not allowed). */
  wrong: string[];
}

export function readCorpus(name: 'train' | 'heldout'): CorpusItem[] {
  const url = new URL(`../corpus/guard/${name}.jsonl`, import.meta.url);
  return readFileSync(url, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as CorpusItem);
}

export function evaluate(items: readonly CorpusItem[], guard: Guard = createGuard({ model: builtinModel() })): Record<string, CategoryRate> {
  const rates: Record<string, CategoryRate> = {};
  for (const item of items) {
    const rate = (rates[item.category] ??= { label: item.label, items: 0, hits: 0, rate: 0, wrong: [] });
    const hit = guard.inspect([item.text]).action !== 'allow';
    rate.items++;
    if (hit) rate.hits++;
    if (hit !== (item.label === 'attack')) rate.wrong.push(item.id);
  }
  for (const rate of Object.values(rates)) rate.rate = Math.round((rate.hits / rate.items) * 1000) / 1000;
  return rates;
}
