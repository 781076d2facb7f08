/**
 * The wire-format neutral part of usage (GW-4): the token estimate, the counts a usage object
 * reports, and how reported and estimated counts combine. Each wire format's adapter
 * (src/gateway/adapters/) knows where its provider puts the counts; the rules are in
 * src/gateway/usage.ts's header.
 */
import type { SseBlock } from './sse.ts';

/** Tokens of one call. `estimated` is true when any part of it was estimated. */
export interface Usage {
  inputTokens: number;
  outputTokens: number;
  estimated: boolean;
}

/** The estimate rule: one token per 4 characters, rounded up. */
export function estimateTokens(chars: number): number {
  return chars <= 0 ? 0 : Math.ceil(chars / 4);
}

// Keys whose strings are not prompt or completion text.
const NON_TEXT_KEYS = new Set([
  'role',
  'type',
  'id',
  'object',
  'model',
  'tool_call_id',
  'tool_use_id',
  'image_url',
  'source',
  'input_audio',
  'file',
  'cache_control',
  'finish_reason',
  'stop_reason',
  'signature',
  'logprobs',
  'index',
]);
const MAX_DEPTH = 32;

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Characters of text in `value`, walking objects and arrays, skipping non-text keys. */
export function textChars(value: unknown, depth = 0): number {
  if (depth > MAX_DEPTH) return 0;
  if (typeof value === 'string') return value.length;
  if (Array.isArray(value)) return value.reduce<number>((sum, v) => sum + textChars(v, depth + 1), 0);
  if (isRecord(value)) {
    let sum = 0;
    for (const [key, v] of Object.entries(value)) if (!NON_TEXT_KEYS.has(key)) sum += textChars(v, depth + 1);
    return sum;
  }
  return 0;
}

/** Embedding `input` given as token ids counts exactly; text counts by the estimate rule. */
function embeddingInputTokens(input: unknown): number {
  if (Array.isArray(input) && input.length > 0 && input.every((v) => typeof v === 'number')) return input.length;
  if (Array.isArray(input) && input.length > 0 && input.every((v) => Array.isArray(v))) {
    return input.reduce<number>((sum, v) => sum + embeddingInputTokens(v), 0);
  }
  return estimateTokens(textChars(input));
}

/**
 * Estimated input tokens of a request body (see the file header for the rule).
 * @example estimateRequestInputTokens({ messages: [{ role: 'user', content: 'Hello there' }] }) // 3
 */
export function estimateRequestInputTokens(body: unknown): number {
  if (!isRecord(body)) return 0;
  let chars = 0;
  for (const key of ['messages', 'system', 'prompt', 'tools']) chars += textChars(body[key]);
  return estimateTokens(chars) + (body.input === undefined ? 0 : embeddingInputTokens(body.input));
}

export function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}

export interface ReportedUsage {
  input?: number;
  output?: number;
}


export function combine(reported: ReportedUsage, estimateInput: () => number, estimateOutput: () => number): Usage {
  const inputTokens = reported.input ?? estimateInput();
  const outputTokens = reported.output ?? estimateOutput();
  return { inputTokens, outputTokens, estimated: reported.input === undefined || reported.output === undefined };
}


/**
 * Finds the usage object in the tail of a JSON document too large to keep whole (OpenAI puts
 * `usage` last, after e.g. thousands of embeddings). Returns the parsed object or undefined.
 */
export function findUsageInJsonTail(tail: string): unknown {
  const at = tail.lastIndexOf('"usage"');
  if (at === -1) return undefined;
  const open = tail.indexOf('{', at);
  if (open === -1) return undefined;
  // A usage object holds only numbers and nested objects of numbers: no strings with braces.
  let depth = 0;
  for (let i = open; i < tail.length; i++) {
    const c = tail[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      try {
        return JSON.parse(tail.slice(open, i + 1)) as unknown;
      } catch {
        return undefined;
      }
    }
  }
  return undefined;
}

/** Follows a stream's events and works out its usage. */
export interface StreamUsageTracker {
  /** Looks at one block; `usageOnly` is true for an OpenAI chunk that carries usage and no choices. */
  observe(block: SseBlock): { usageOnly: boolean };
  /** True once the stream's end marker was seen (`[DONE]`, or Anthropic's `message_stop`). */
  readonly finished: boolean;
  /** The usage so far: reported counts where the stream had them, estimates elsewhere. */
  usage(): Usage;
}

/** Unparsed text deltas a tracker holds before it counts them. */
const MAX_DEFERRED_CHARS = 256 * 1024;

/**
 * Text deltas kept unparsed until the output estimate needs them: most providers report the output
 * count at the end, and then they are never parsed. Bounded: past MAX_DEFERRED_CHARS they are
 * counted at once. `charsOf` reads the generated text of one parsed event.
 */
export function createDeferredText(charsOf: (payload: Record<string, unknown>) => number): { defer(data: string): void; chars(): number } {
  let outputChars = 0;
  let deferred: string[] = [];
  let deferredChars = 0;
  const countDeferred = (): void => {
    for (const data of deferred) {
      const payload = parseJson(data);
      if (isRecord(payload)) outputChars += charsOf(payload);
    }
    deferred = [];
    deferredChars = 0;
  };
  return {
    defer(data: string): void {
      deferred.push(data);
      deferredChars += data.length;
      if (deferredChars > MAX_DEFERRED_CHARS) countDeferred();
    },
    chars(): number {
      countDeferred();
      return outputChars;
    },
  };
}

export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
