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

/** 32-bit FNV-1a of a string's UTF-16 code units. */
function fnv1a(text: string, seed: number): number {
  let h = (0x811c9dc5 ^ seed) >>> 0;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

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

/**
 * Hashed features of `text` as a map bucket → value, L2-normalised. Character 3- to 5-grams of
 * the padded text, word unigrams and bigrams (with distinct seeds so the families do not collide).
 */
export function features(text: string, buckets: number): Map<number, number> {
  const mask = buckets - 1;
  const counts = new Map<number, number>();
  const add = (bucket: number): void => {
    counts.set(bucket, (counts.get(bucket) ?? 0) + 1);
  };
  const padded = ` ${featureText(text)} `;
  for (let n = 3; n <= 5; n++) {
    for (let i = 0; i + n <= padded.length; i++) add(fnv1a(padded.slice(i, i + n), n) & mask);
  }
  const words = padded.match(/[\p{L}\p{N}']+|[^\s\p{L}\p{N}]/gu) ?? [];
  for (let i = 0; i < words.length; i++) {
    add(fnv1a(words[i] ?? '', 101) & mask);
    if (i + 1 < words.length) add(fnv1a(`${words[i]} ${words[i + 1]}`, 102) & mask);
  }
  let norm = 0;
  for (const c of counts.values()) norm += c * c;
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (const [k, c] of counts) counts.set(k, c * scale);
  return counts;
}

function sigmoid(z: number): number {
  return 1 / (1 + Math.exp(-z));
}

/** A model ready for scoring: the sparse weights expanded into one dense array. */
export interface CompiledModel {
  buckets: number;
  bias: number;
  dense: Float32Array;
}

/** The model's probability that `text` (one window) is an attack. */
export function scoreWindow(model: CompiledModel, text: string): number {
  let z = model.bias;
  for (const [bucket, value] of features(text, model.buckets)) z += (model.dense[bucket] ?? 0) * value;
  return sigmoid(z);
}

/** The highest window probability over `text`. */
export function classify(model: CompiledModel, text: string): number {
  if (text.length <= WHOLE_CHARS) return scoreWindow(model, text);
  let best = 0;
  for (let start = 0; start < text.length; start += WINDOW_STRIDE) {
    best = Math.max(best, scoreWindow(model, text.slice(start, start + WINDOW_CHARS)));
    if (start + WINDOW_CHARS >= text.length) break;
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
  return { buckets: m.buckets, bias: m.bias, dense };
}
