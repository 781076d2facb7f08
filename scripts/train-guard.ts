/**
 * Trains the input guard's built-in classifier (src/guard/classifier.ts) from
 * test/corpus/guard/train.jsonl and writes src/guard/model.json. Never reads the held-out set.
 *
 * Logistic regression by stochastic gradient descent over hashed character and word n-grams of
 * the normalised text, classes weighted to balance, L2 regularisation. Deterministic: a seeded
 * shuffle, a fixed number of epochs, weights rounded to 4 decimals, so the same train.jsonl
 * always gives the same model.json byte for byte.
 *
 * Usage: node scripts/train-guard.ts   (then: npx vitest run test/guard/corpus.test.ts)
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { features, type LinearModel } from '../src/guard/classifier.ts';
import { normalize } from '../src/guard/normalize.ts';

const BUCKETS = 1 << 16;
const EPOCHS = 40;
const SEED = 19;
const LEARNING_RATE = 0.5;
const L2 = 1e-5;

interface Item {
  label: 'attack' | 'benign';
  category: string;
  text: string;
  split: string;
}

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Trains on `items` and returns the model. Exported for the determinism test. */
export function train(items: readonly Item[], seed = SEED): LinearModel {
  const rows = items.map((item) => ({ y: item.label === 'attack' ? 1 : 0, x: [...features(normalize(item.text).text, BUCKETS)] }));
  const positives = rows.filter((r) => r.y === 1).length;
  const negatives = rows.length - positives;
  const classWeight = [rows.length / (2 * Math.max(negatives, 1)), rows.length / (2 * Math.max(positives, 1))];
  const w = new Float64Array(BUCKETS);
  let bias = 0;
  const rnd = mulberry32(seed);
  const order = rows.map((_, i) => i);
  for (let epoch = 0; epoch < EPOCHS; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(rnd() * (i + 1));
      [order[i], order[j]] = [order[j] ?? 0, order[i] ?? 0];
    }
    const rate = LEARNING_RATE / (1 + epoch * 0.1);
    for (const index of order) {
      const row = rows[index];
      if (!row) continue;
      let z = bias;
      for (const [k, v] of row.x) z += (w[k] ?? 0) * v;
      const p = 1 / (1 + Math.exp(-z));
      const g = (p - row.y) * (classWeight[row.y] ?? 1);
      for (const [k, v] of row.x) w[k] = (w[k] ?? 0) * (1 - rate * L2) - rate * g * v;
      bias -= rate * g;
    }
  }
  const weights: Record<string, number> = {};
  w.forEach((value, k) => {
    const rounded = Math.round(value * 1e4) / 1e4;
    if (rounded !== 0) weights[k] = rounded;
  });
  return { version: 1, buckets: BUCKETS, bias: Math.round(bias * 1e4) / 1e4, weights, trainedOn: { items: items.length, sha256: '', epochs: EPOCHS, seed } };
}

/** Reads a corpus JSONL file. */
export function readCorpus(url: URL): Item[] {
  return readFileSync(url, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as Item);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const trainUrl = new URL('../test/corpus/guard/train.jsonl', import.meta.url);
  const items = readCorpus(trainUrl);
  if (items.some((item) => item.split !== 'train')) throw new Error('train.jsonl holds a non-train item');
  const model = train(items);
  model.trainedOn = { items: items.length, sha256: createHash('sha256').update(readFileSync(trainUrl)).digest('hex'), epochs: EPOCHS, seed: SEED };
  writeFileSync(new URL('../src/guard/model.json', import.meta.url), JSON.stringify(model) + '\n');
  console.log(`trained on ${items.length} items; ${Object.keys(model.weights).length} non-zero weights`);
}
