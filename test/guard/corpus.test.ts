/**
 * ABUSE-4: the guard's detection and false-positive rates on the held-out corpus, per category,
 * may not regress past the baselines recorded in test/guard/corpus-baseline.json. The rates are
 * printed on every run. Also checks that the corpus files are exactly what the generator makes,
 * that the held-out set shares nothing with the training set, and that the shipped model is the
 * deterministic result of training on the shipped train.jsonl.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { build } from '../../scripts/gen-guard-corpus.ts';
import { train } from '../../scripts/train-guard.ts';
import { evaluate, readCorpus } from './corpus-eval.ts';

interface Baseline {
  targets: { detection: number; falsePositiveOrdinary: number; falsePositiveLookalike: number };
  categories: Record<string, { label: 'attack' | 'benign'; rate: number; items: number }>;
}

const baseline = JSON.parse(readFileSync(new URL('./corpus-baseline.json', import.meta.url), 'utf8')) as Baseline;
const heldout = readCorpus('heldout');
const trainItems = readCorpus('train');

describe('input guard corpus (ABUSE-4)', () => {
  it('detection and false-positive rates on the held-out set do not regress past the recorded baselines', () => {
    const rates = evaluate(heldout);
    const rows = Object.entries(rates).map(([category, r]) => `${category.padEnd(18)} ${r.label === 'attack' ? 'detection' : 'false pos'} ${(r.rate * 100).toFixed(1).padStart(5)} % of ${r.items}  (baseline ${((baseline.categories[category]?.rate ?? NaN) * 100).toFixed(1)} %)`);
    console.log(`guard held-out corpus:\n${rows.join('\n')}`);
    expect(Object.keys(rates).sort()).toEqual(Object.keys(baseline.categories).sort());
    for (const [category, r] of Object.entries(rates)) {
      const base = baseline.categories[category];
      if (!base) throw new Error(`no baseline for ${category}`);
      if (r.label === 'attack') expect({ category, rate: r.rate, missed: r.wrong }).toMatchObject({ rate: expect.toSatisfy((x: number) => x >= base.rate) });
      else expect({ category, rate: r.rate, falsePositives: r.wrong }).toMatchObject({ rate: expect.toSatisfy((x: number) => x <= base.rate) });
    }
  });

  it('the corpus files are exactly what scripts/gen-guard-corpus.ts generates', () => {
    expect(build('train', 1907)).toEqual(trainItems);
    expect(build('heldout', 1913)).toEqual(heldout);
  });

  it('the held-out set shares no text and no source item with the training set', () => {
    const trainTexts = new Set(trainItems.map((i) => i.text.toLowerCase()));
    const trainIds = new Set(trainItems.map((i) => i.id));
    for (const item of heldout) {
      expect(item.split).toBe('heldout');
      expect(trainTexts.has(item.text.toLowerCase())).toBe(false);
      expect(trainIds.has(item.id)).toBe(false);
    }
    for (const item of [...heldout, ...trainItems]) expect(item.source && item.licence).toBeTruthy();
  });

  it('the shipped model is the deterministic result of training on the shipped train.jsonl', () => {
    const shipped = JSON.parse(readFileSync(new URL('../../src/guard/model.json', import.meta.url), 'utf8')) as ReturnType<typeof train>;
    const trainSha = createHash('sha256').update(readFileSync(new URL('../corpus/guard/train.jsonl', import.meta.url))).digest('hex');
    expect(shipped.trainedOn?.sha256).toBe(trainSha);
    const retrained = train(trainItems);
    expect(retrained.bias).toBe(shipped.bias);
    expect(retrained.weights).toEqual(shipped.weights);
  });
});
