/**
 * Token usage of one gateway call (GW-4), read from what the provider reports and estimated when it
 * reports nothing.
 *
 * Reported usage:
 * - OpenAI-compatible JSON: `usage.prompt_tokens` / `usage.completion_tokens` (embeddings: prompt
 *   only, output 0). Streams: the final chunk sent when `stream_options.include_usage` is set (the
 *   proxy sets it), which has `choices: []` and a `usage` object.
 * - Anthropic JSON: `usage.input_tokens` (+ `cache_creation_input_tokens` + `cache_read_input_tokens`,
 *   since Anthropic counts cached prompt tokens apart and they are still prompt tokens) and
 *   `usage.output_tokens`. Streams: `message_start` carries the input count, `message_delta` the
 *   final cumulative output count.
 *
 * Estimate, when a count is missing (a compatible server that sends no usage, or a stream that
 * broke before its usage event): one token per 4 characters, rounded up, of
 * - input: the text of the request: every string under `messages`, `system`, `prompt`, `input` and
 *   `tools`, except keys that hold no prompt text (role, type, ids, images, audio, files);
 *   embedding inputs given as token arrays count one token per element;
 * - output: the generated text (message content, tool-call arguments, reasoning), or for streams the
 *   text of every delta seen.
 * 4 characters per token is the usual rule of thumb for English with current tokenizers; it is off
 * for code and for other scripts, which is why such records carry `estimated: true`.
 */

/** The wire format a response is in: the OpenAI one (OpenAI, Azure OpenAI, compatible servers) or Anthropic's. */
export type WireFormat = 'openai' | 'anthropic';

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

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Characters of text in `value`, walking objects and arrays, skipping non-text keys. */
function textChars(value: unknown, depth = 0): number {
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

function count(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) && value >= 0 ? Math.floor(value) : undefined;
}

interface ReportedUsage {
  input?: number;
  output?: number;
}

/** The counts a usage object reports, in either format (the Responses API's names included). */
function readUsageObject(format: WireFormat, usage: unknown): ReportedUsage {
  if (!isRecord(usage)) return {};
  if (format === 'anthropic') {
    const input = count(usage.input_tokens);
    const cached = (count(usage.cache_creation_input_tokens) ?? 0) + (count(usage.cache_read_input_tokens) ?? 0);
    return { input: input === undefined ? undefined : input + cached, output: count(usage.output_tokens) };
  }
  const input = count(usage.prompt_tokens) ?? count(usage.input_tokens);
  const output = count(usage.completion_tokens) ?? count(usage.output_tokens);
  // Embeddings report prompt tokens only: there is no output to count.
  return { input, output: output ?? (input !== undefined ? 0 : undefined) };
}

function combine(reported: ReportedUsage, estimateInput: () => number, estimateOutput: () => number): Usage {
  const inputTokens = reported.input ?? estimateInput();
  const outputTokens = reported.output ?? estimateOutput();
  return { inputTokens, outputTokens, estimated: reported.input === undefined || reported.output === undefined };
}

/** Characters of generated text in a complete (non-streamed) response. */
function responseTextChars(format: WireFormat, response: Record<string, unknown>): number {
  if (format === 'anthropic') return textChars(response.content);
  return textChars(response.choices);
}

/**
 * Usage of a complete JSON response: what the provider reports, estimated where it reports nothing.
 * @example usageFromJson('openai', JSON.parse(body), requestBody)
 */
export function usageFromJson(format: WireFormat, response: unknown, requestBody: unknown): Usage {
  const record = isRecord(response) ? response : {};
  return combine(
    readUsageObject(format, record.usage),
    () => estimateRequestInputTokens(requestBody),
    () => estimateTokens(responseTextChars(format, record)),
  );
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

// ---------------------------------------------------------------------------------------------
// Server-sent events

/** One block of an SSE stream: the text up to and including the blank line that ends it. */
export interface SseBlock {
  /** The `event:` field, or null. */
  event: string | null;
  /** The `data:` lines joined with '\n' (empty when there were none). */
  data: string;
  hasData: boolean;
  /** The exact text of the block, line endings included, for relaying it unchanged. */
  raw: string;
  /** True for a block cut in pieces because it exceeded the size limit; its fields are empty. */
  oversized: boolean;
}

export interface SseParserOptions {
  /** A block longer than this (characters) is passed on in pieces and not parsed. Default 1 MiB. */
  maxBlockChars?: number;
}

/** An incremental SSE parser: feed it text as it arrives, in chunks cut anywhere. */
export interface SseParser {
  /** Parses `text` and returns the blocks it completed (raw text of oversized blocks as it comes). */
  feed(text: string): SseBlock[];
  /** Ends the stream: returns what remains (an unterminated block is returned raw, unparsed). */
  end(): SseBlock[];
}

const LINE_END = /[\r\n]/g;

/**
 * An SSE parser after the WHATWG rules: lines end in CRLF, LF or CR (also when CR and LF arrive in
 * different chunks), lines starting with ':' are comments, `data` lines accumulate, a blank line
 * ends a block. Each block keeps its raw text so a relay can forward or drop whole blocks.
 * @example const p = createSseParser(); for (const b of p.feed(text)) if (b.hasData) use(b.data)
 */
export function createSseParser(options: SseParserOptions = {}): SseParser {
  const maxBlockChars = options.maxBlockChars ?? 1024 * 1024;
  let pending = ''; // text after the last complete line
  let raw = ''; // raw text of the current block's complete lines
  let event: string | null = null;
  let data: string[] = [];
  let oversized = false; // inside a block that outgrew the limit: pass raw on, parse nothing
  let oversizedLineHasText = false; // an oversized block's current line already had text

  const reset = (): void => {
    raw = '';
    event = null;
    data = [];
  };
  const piece = (text: string): SseBlock => ({ event: null, data: '', hasData: false, raw: text, oversized: true });

  const takeLine = (line: string, rawLine: string, out: SseBlock[]): void => {
    if (oversized) {
      const blank = line === '' && !oversizedLineHasText;
      oversizedLineHasText = false;
      out.push(piece(rawLine));
      if (blank) {
        oversized = false;
        reset();
      }
      return;
    }
    raw += rawLine;
    if (line === '') {
      out.push({ event, data: data.join('\n'), hasData: data.length > 0, raw, oversized: false });
      reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  };

  return {
    feed(text: string): SseBlock[] {
      const out: SseBlock[] = [];
      const buffer = pending + text;
      let start = 0;
      if (!buffer.includes('\r')) {
        // The usual stream, LF line ends only: plain searches instead of the pattern below.
        for (let at = buffer.indexOf('\n'); at !== -1; at = buffer.indexOf('\n', start)) {
          takeLine(buffer.slice(start, at), buffer.slice(start, at + 1), out);
          start = at + 1;
        }
      }
      LINE_END.lastIndex = start;
      for (let m = LINE_END.exec(buffer); m !== null; m = LINE_END.exec(buffer)) {
        const at = m.index;
        if (buffer[at] === '\r') {
          // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
          if (at === buffer.length - 1) break;
          const end = buffer[at + 1] === '\n' ? at + 2 : at + 1;
          takeLine(buffer.slice(start, at), buffer.slice(start, end), out);
          start = end;
          LINE_END.lastIndex = end;
        } else {
          takeLine(buffer.slice(start, at), buffer.slice(start, at + 1), out);
          start = at + 1;
        }
      }
      pending = buffer.slice(start);
      if (!oversized && raw.length + pending.length > maxBlockChars) {
        // Too big to hold: hand on what we have and stream the rest of this block through.
        oversized = true;
        out.push(piece(raw));
        reset();
      }
      if (oversized) {
        const keep = pending.endsWith('\r') ? 1 : 0; // a trailing CR still decides where the line ends
        const now = pending.slice(0, pending.length - keep);
        if (now.length > 0) {
          out.push(piece(now));
          oversizedLineHasText = true;
        }
        pending = pending.slice(pending.length - keep);
      }
      return out.filter((b) => b.raw.length > 0);
    },
    end(): SseBlock[] {
      const out: SseBlock[] = [];
      if (pending.endsWith('\r')) {
        takeLine(pending.slice(0, -1), pending, out);
        pending = '';
      }
      const rest = raw + pending;
      if (rest.length > 0) out.push(piece(rest));
      pending = '';
      oversized = false;
      reset();
      return out;
    },
  };
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

/**
 * A JSON text with a `usage` key holding an object. A key spelled with escapes (`"\u0075sage"`)
 * is not seen: that stream's usage is then estimated, and flagged so.
 */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;
/** Unparsed text deltas a tracker holds before it counts them. */
const MAX_DEFERRED_CHARS = 256 * 1024;

/**
 * Tracks usage through a stream in `format`. Pass the request body for the input estimate.
 * @example const t = createStreamUsageTracker('openai', body); for (const b of blocks) t.observe(b); t.usage()
 */
export function createStreamUsageTracker(format: WireFormat, requestBody: unknown): StreamUsageTracker {
  let reported: ReportedUsage = {};
  let outputChars = 0;
  let finished = false;
  // Events that only matter for the output estimate (text deltas), kept unparsed: most providers
  // report the output count at the end, and then they are never parsed. Bounded: past
  // MAX_DEFERRED_CHARS they are counted at once.
  let deferred: string[] = [];
  let deferredChars = 0;

  const countDeferred = (): void => {
    for (const data of deferred) {
      const payload = parseJson(data);
      if (!isRecord(payload)) continue;
      if (format === 'anthropic') outputChars += textChars(payload.delta);
      else if (Array.isArray(payload.choices)) {
        for (const choice of payload.choices) if (isRecord(choice)) outputChars += textChars(choice.delta) + textChars(choice.text);
      }
    }
    deferred = [];
    deferredChars = 0;
  };
  const defer = (data: string): void => {
    deferred.push(data);
    deferredChars += data.length;
    if (deferredChars > MAX_DEFERRED_CHARS) countDeferred();
  };

  const observeOpenAI = (block: SseBlock): { usageOnly: boolean } => {
    if (block.data === '[DONE]') {
      finished = true;
      return { usageOnly: false };
    }
    // Only a chunk with a usage object is read now; text deltas wait (see `deferred`).
    if (!USAGE_OBJECT.test(block.data)) {
      defer(block.data);
      return { usageOnly: false };
    }
    const chunk = parseJson(block.data);
    if (!isRecord(chunk)) return { usageOnly: false };
    const choices = chunk.choices;
    if (Array.isArray(choices)) {
      for (const choice of choices) if (isRecord(choice)) outputChars += textChars(choice.delta) + textChars(choice.text);
    }
    if (isRecord(chunk.usage)) {
      // Some compatible servers repeat a running total in every chunk: the last one wins.
      const u = readUsageObject('openai', chunk.usage);
      reported = { input: u.input ?? reported.input, output: u.output ?? reported.output };
      return { usageOnly: Array.isArray(choices) && choices.length === 0 };
    }
    return { usageOnly: false };
  };

  const observeAnthropic = (block: SseBlock): void => {
    const type = block.event;
    if (type === 'message_stop') {
      finished = true;
      return;
    }
    if (type === 'content_block_delta') {
      defer(block.data);
      return;
    }
    if (type !== 'message_start' && type !== 'message_delta') return;
    const payload = parseJson(block.data);
    if (!isRecord(payload)) return;
    if (type === 'message_start') {
      const message = payload.message;
      if (isRecord(message)) {
        const u = readUsageObject('anthropic', message.usage);
        // message_start's output count is a placeholder (often 1); message_delta gives the total.
        reported = { input: u.input ?? reported.input, output: reported.output };
      }
    } else {
      const u = readUsageObject('anthropic', payload.usage);
      reported = { input: u.input ?? reported.input, output: u.output ?? reported.output };
    }
  };

  return {
    observe(block: SseBlock): { usageOnly: boolean } {
      if (!block.hasData) return { usageOnly: false };
      if (format === 'openai') return observeOpenAI(block);
      observeAnthropic(block);
      return { usageOnly: false };
    },
    get finished(): boolean {
      return finished;
    },
    usage(): Usage {
      return combine(
        reported,
        () => estimateRequestInputTokens(requestBody),
        () => {
          countDeferred();
          return estimateTokens(outputChars);
        },
      );
    },
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
