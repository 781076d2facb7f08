/**
 * Layer 3 of the input guard: a linear model (logistic regression) over hashed character and word
 * n-grams. The features and the scoring live here; `scripts/train-guard.ts` trains the weights
 * deterministically from test/corpus/guard/train.jsonl and writes src/guard/model.json, which ships
 * in the repo. No network, no native code: scoring a 4 KB prompt is a few thousand hash lookups.
 *
 * Long texts are scored in overlapping windows and the highest window wins, so an injection in the
 * middle of a long document is not diluted by the benign text around it.
 */

/** The trained model as stored in model.json. */
export interface LinearModel {
  version: 1;
  /** Number of hash buckets (a power of two). */
  buckets: number;
  bias: number;
  /** Sparse weights: bucket index → weight. */
  weights: Record<string, number>;
  /** Informational: how the model was trained. */
  trainedOn?: { items: number; sha256: string; epochs: number; seed: number };
}

/** Window size and stride (characters) for long texts. */
export const WINDOW_CHARS = 300;
export const WINDOW_STRIDE = 150;
/** Texts up to this length are scored whole. */
export const WHOLE_CHARS = 400;

/** Long runs of base64 or hex: noise to the model (their decoded views are scored instead). */
// eslint-disable-next-line security/detect-unsafe-regex -- fixed-length units, linear backtracking (see decode.ts)
const ENCODED_RUN = /[A-Za-z0-9+/_=-]{32,}|(?:[0-9a-fA-F]{2}[ :]?){12,}/g;

/** The text the features are computed from: lower case, digits folded, whitespace collapsed. */
export function featureText(text: string): string {
  return text
    .replace(ENCODED_RUN, ' ')
    .toLowerCase()
    .replace(/\d/g, '0')
    .replace(/\s+/g, ' ')
    .trim();
}

/** 32-bit FNV-1a of `text[from, to)`, the same as fnv1a(text.slice(from, to), seed) without the slice. */
function fnvRange(text: string, from: number, to: number, seed: number, start = (0x811c9dc5 ^ seed) >>> 0): number {
  let h = start;
  for (let i = from; i < to; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

const WORD = /[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu;

/**
 * The hashed features of a feature text, in two lists sorted by the position they start at:
 * character 3- to 5-grams of the padded text, and word unigrams and bigrams (distinct seeds, so
 * the families do not collide). Positions let long texts be scored in windows without hashing twice.
 */
interface Extracted {
  buckets: Int32Array;
  starts: Int32Array;
  length: number;
}

function extract(ft: string, mask: number): Extracted[] {
  const padded = ` ${ft} `;
  const size = Math.max(0, 3 * padded.length);
  const chars: Extracted = { buckets: new Int32Array(size), starts: new Int32Array(size), length: 0 };
  for (let i = 0; i + 3 <= padded.length; i++) {
    // FNV-1a of the 3-, 4- and 5-gram at i, each with its own seed, hashed in one pass over 5 characters.
    let h3 = (0x811c9dc5 ^ 3) >>> 0;
    let h4 = (0x811c9dc5 ^ 4) >>> 0;
    let h5 = (0x811c9dc5 ^ 5) >>> 0;
    for (let k = 0; k < 5 && i + k < padded.length; k++) {
      const c = padded.charCodeAt(i + k);
      if (k < 3) h3 = Math.imul(h3 ^ c, 0x01000193) >>> 0;
      if (k < 4) h4 = Math.imul(h4 ^ c, 0x01000193) >>> 0;
      h5 = Math.imul(h5 ^ c, 0x01000193) >>> 0;
    }
    chars.buckets[chars.length] = h3 & mask;
    chars.starts[chars.length++] = i;
    if (i + 4 <= padded.length) {
      chars.buckets[chars.length] = h4 & mask;
      chars.starts[chars.length++] = i;
    }
    if (i + 5 <= padded.length) {
      chars.buckets[chars.length] = h5 & mask;
      chars.starts[chars.length++] = i;
    }
  }
  const wordBuckets: number[] = [];
  const wordStarts: number[] = [];
  let previous: { from: number; to: number } | undefined;
  for (const match of padded.matchAll(WORD)) {
    const from = match.index;
    const to = from + match[0].length;
    wordBuckets.push(fnvRange(padded, from, to, 101) & mask);
    wordStarts.push(from);
    if (previous) {
      // `${w1} ${w2}` hashed in place: the first word, one space, the second word.
      let h = fnvRange(padded, previous.from, previous.to, 102);
      h = Math.imul(h ^ 32, 0x01000193) >>> 0;
      wordBuckets.push(fnvRange(padded, from, to, 102, h) & mask);
      wordStarts.push(previous.from);
    }
    previous = { from, to };
  }
  return [chars, { buckets: Int32Array.from(wordBuckets), starts: Int32Array.from(wordStarts), length: wordBuckets.length }];
}

/** The first index of `sorted` whose value is >= `value`. */
function lowerBound(sorted: Int32Array, length: number, value: number): number {
  let lo = 0;
  let hi = length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if ((sorted[mid] ?? 0) < value) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * Hashed features of `text` as a map bucket → value, L2-normalised: what training sees, and
 * exactly what `classify` scores for a text of up to WHOLE_CHARS.
 */
export function features(text: string, buckets: number): Map<number, number> {
  const counts = new Map<number, number>();
  for (const list of extract(featureText(text), buckets - 1)) for (let i = 0; i < list.length; i++) counts.set(list.buckets[i] ?? 0, (counts.get(list.buckets[i] ?? 0) ?? 0) + 1);
  let norm = 0;
  for (const c of counts.values()) norm += c * c;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (const [k, c] of counts) counts.set(k, c * scale);
  return counts;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** A model ready for scoring: the sparse weights expanded into one dense array, and a scratch counter. */
export interface CompiledModel {
  buckets: number;
  bias: number;
  dense: Float32Array;
  scratch: Uint32Array;
}

/** The model's probability for the features of `lists` that start in [from, to). */
function scoreRange(model: CompiledModel, lists: readonly Extracted[], from: number, to: number): number {
  const counts = model.scratch;
  const touched: number[] = [];
  for (const list of lists) {
    const end = to === Infinity ? list.length : lowerBound(list.starts, list.length, to);
    for (let i = lowerBound(list.starts, list.length, from); i < end; i++) {
      const b = list.buckets[i] ?? 0;
      if (counts[b] === 0) touched.push(b);
      counts[b] = (counts[b] ?? 0) + 1;
    }
  }
  let z = 0;
  let norm = 0;
  for (const b of touched) {
    const c = counts[b] ?? 0;
    z += (model.dense[b] ?? 0) * c;
    norm += c * c;
    counts[b] = 0;
  }
  return sigmoid(model.bias + (norm > 0 ? z / Math.sqrt(norm) : 0));
}

/** The model's probability that `text` (one window) is an attack. */
export function scoreWindow(model: CompiledModel, text: string): number {
  return scoreRange(model, extract(featureText(text), model.buckets - 1), 0, Infinity);
}

/** The highest window probability over `text` (features hashed once, windows over the feature text). */
export function classify(model: CompiledModel, text: string): number {
  const ft = featureText(text);
  const lists = extract(ft, model.buckets - 1);
  const length = ft.length + 2;
  if (length <= WHOLE_CHARS) return scoreRange(model, lists, 0, Infinity);
  let best = 0;
  for (let start = 0; start < length; start += WINDOW_STRIDE) {
    best = Math.max(best, scoreRange(model, lists, start, start + WINDOW_CHARS));
    if (start + WINDOW_CHARS >= length) break;
  }
  return best;
}

/** Checks the shape of a model loaded from JSON and compiles it; throws on anything else. */
export function compileModel(raw: unknown): CompiledModel {
  const m = raw as Partial<LinearModel> | null;
  if (!m || m.version !== 1 || typeof m.buckets !== 'number' || m.buckets < 2 || m.buckets > 1 << 22 || (m.buckets & (m.buckets - 1)) !== 0 || typeof m.bias !== 'number' || typeof m.weights !== 'object' || m.weights === null) {
    throw new Error('guard model: not a version-1 linear model');
  }
  const dense = new Float32Array(m.buckets);
  for (const [key, weight] of Object.entries(m.weights)) {
    const bucket = Number(key);
    if (!Number.isInteger(bucket) || bucket < 0 || bucket >= m.buckets || typeof weight !== 'number' || !Number.isFinite(weight)) {
      throw new Error('guard model: bad weight entry');
    }
    dense[bucket] = weight;
  }
  return { buckets: m.buckets, bias: m.bias, dense, scratch: new Uint32Array(m.buckets) };
}
