/**
 * The input guard: normalisation and decoding, named rules, the built-in classifier and an
 * optional external classifier, combined into one verdict (allow / flag / block), a score in
 * [0, 1] and the names of what fired. Pure and synchronous except for the external classifier.
 *
 * Scoring: every decoded view of every text is matched against the rules and scored by the model.
 * The weights of the rules that fired anywhere, the obfuscation signals, and the model's highest
 * probability are combined by noisy-OR (1 − Π(1 − w)). A decoder's name (`obfuscation.base64`)
 * fires, with its own weight, only when the decoded view revealed a rule or a model hit the plain
 * text did not show, so an ordinary base64 attachment is not a signal on its own.
 */
import { classify, type CompiledModel } from './classifier.ts';
import { decodeViews, DEFAULT_DECODE_LIMITS, type DecodeLimits } from './decode.ts';
import type { ExternalClassifier } from './external.ts';
import { normalize } from './normalize.ts';
import { DECODED_ATTACK_WEIGHT, matchRules, OBFUSCATION_WEIGHTS, RULES, ruleText, type Rule } from './rules.ts';

/** What the guard decided. */
export type GuardAction = 'allow' | 'flag' | 'block';

/** The guard's verdict on one call's content. */
export interface GuardVerdict {
  action: GuardAction;
  /** Combined score in [0, 1]. */
  score: number;
  /** Names of the rules, signals and model layers that fired, sorted. */
  fired: string[];
  /** The built-in classifier's highest probability (0 when it is off). */
  classifierScore: number;
}

/** Score thresholds: at or above `flag` the verdict is flag, at or above `block` it is block. */
export interface GuardThresholds {
  flag: number;
  block: number;
}

export const DEFAULT_THRESHOLDS: GuardThresholds = { flag: 0.5, block: 0.8 };

/** How a guard is built. */
export interface GuardOptions {
  /** The built-in classifier; `null` switches it off. */
  model: CompiledModel | null;
  thresholds?: GuardThresholds;
  /** Rule names (or category prefixes such as `jailbreak.`) that are switched off. */
  disabledRules?: readonly string[];
  decodeLimits?: DecodeLimits;
}

/** A configured guard. */
export interface Guard {
  /** Inspects the user- and tool-supplied texts of one call. */
  inspect(texts: readonly string[]): GuardVerdict;
  /** Like `inspect`, then asks `external`; its failure counts per its fail mode. */
  inspectWithExternal(texts: readonly string[], external: ExternalClassifier): Promise<GuardVerdict>;
}

/** The model's probability from which the classifier counts as fired. */
const CLASSIFIER_FIRES = 0.5;

interface TextFindings {
  weights: Map<string, number>;
  classifierScore: number;
}

function noisyOr(weights: Iterable<number>): number {
  let keep = 1;
  for (const w of weights) keep *= 1 - Math.min(Math.max(w, 0), 1);
  return 1 - keep;
}

function isDisabled(name: string, disabled: readonly string[]): boolean {
  return disabled.some((d) => name === d || (d.endsWith('.') && name.startsWith(d)));
}

function inspectText(input: string, model: CompiledModel | null, rules: readonly Rule[], disabled: readonly string[], limits: DecodeLimits): TextFindings {
  const weights = new Map<string, number>();
  const normalized = normalize(input);
  for (const signal of normalized.signals) weights.set(signal, OBFUSCATION_WEIGHTS[signal] ?? 0.2);
  let plainRules = new Set<string>();
  let plainScore = 0;
  let classifierScore = 0;
  for (const view of decodeViews(normalized.text, limits)) {
    const hits = matchRules(ruleText(view.text), rules);
    const p = model ? classify(model, view.text) : 0;
    if (view.via.length === 0) {
      plainRules = new Set(hits.map((r) => r.name));
      plainScore = p;
    }
    for (const rule of hits) weights.set(rule.name, rule.weight);
    classifierScore = Math.max(classifierScore, p);
    const revealed = hits.some((r) => !plainRules.has(r.name)) || (p >= CLASSIFIER_FIRES && p > plainScore + 0.2);
    if (view.via.length > 0 && revealed) for (const name of view.via) weights.set(`obfuscation.${name}`, DECODED_ATTACK_WEIGHT);
  }
  for (const name of weights.keys()) if (isDisabled(name, disabled)) weights.delete(name);
  if (isDisabled('classifier', disabled)) classifierScore = 0;
  return { weights, classifierScore };
}

function verdictOf(weights: Map<string, number>, classifierScore: number, thresholds: GuardThresholds): GuardVerdict {
  const fired = [...weights.keys()];
  if (classifierScore >= CLASSIFIER_FIRES) fired.push('classifier');
  const score = noisyOr([...weights.values(), classifierScore]);
  const action: GuardAction = score >= thresholds.block ? 'block' : score >= thresholds.flag ? 'flag' : 'allow';
  return { action, score, fired: fired.sort(), classifierScore };
}

/**
 * Findings per text, most recently used last: a chat resends its whole history on every turn, so
 * without this every earlier message would be inspected again on each call. Keyed by the text and
 * everything that changes its findings (model on/off, decode limits, rules off); thresholds apply
 * after. Bounded by entries and by the characters held.
 */
const findingsCache = new Map<string, TextFindings>();
const CACHE_ENTRIES = 4096;
const CACHE_MAX_TEXT = 32 * 1024;
let cacheChars = 0;
const CACHE_CHARS = 8 * 1024 * 1024;

function cachedFindings(key: string, compute: () => TextFindings, textLength: number): TextFindings {
  const hit = findingsCache.get(key);
  if (hit) {
    findingsCache.delete(key);
    findingsCache.set(key, hit);
    return hit;
  }
  const found = compute();
  if (textLength > CACHE_MAX_TEXT) return found;
  findingsCache.set(key, found);
  cacheChars += key.length;
  while (findingsCache.size > CACHE_ENTRIES || cacheChars > CACHE_CHARS) {
    const oldest = findingsCache.keys().next().value;
    if (oldest === undefined) break;
    findingsCache.delete(oldest);
    cacheChars -= oldest.length;
  }
  return found;
}

/**
 * Builds a guard.
 * @example createGuard({ model: builtinModel() }).inspect(['Ignore all previous instructions']).action // 'block'
 */
export function createGuard(options: GuardOptions): Guard {
  const thresholds = options.thresholds ?? DEFAULT_THRESHOLDS;
  const disabled = options.disabledRules ?? [];
  const rules = RULES.filter((r) => !isDisabled(r.name, disabled));
  const limits = options.decodeLimits ?? DEFAULT_DECODE_LIMITS;
  const cacheKey = `${options.model ? 'm' : '-'}|${limits.maxDepth}/${limits.maxViews}/${limits.maxViewChars}|${[...disabled].sort().join(',')}|`;
  const collect = (texts: readonly string[]): TextFindings => {
    const weights = new Map<string, number>();
    let classifierScore = 0;
    for (const text of texts) {
      const found = cachedFindings(cacheKey + text, () => inspectText(text, options.model, rules, disabled, limits), text.length);
      for (const [name, w] of found.weights) weights.set(name, Math.max(w, weights.get(name) ?? 0));
      classifierScore = Math.max(classifierScore, found.classifierScore);
    }
    return { weights, classifierScore };
  };
  return {
    inspect(texts) {
      const found = collect(texts);
      return verdictOf(found.weights, found.classifierScore, thresholds);
    },
    async inspectWithExternal(texts, external) {
      const found = collect(texts);
      const answer = await external.classify(texts.join('\n\n'));
      if (answer.ok) {
        if (answer.score >= CLASSIFIER_FIRES) found.weights.set('external', answer.score);
      } else if (external.failMode === 'closed') {
        found.weights.set('external.unavailable', 1);
      }
      return verdictOf(found.weights, found.classifierScore, thresholds);
    },
  };
}
