/**
 * The OpenAI wire format: `/v1/chat/completions`, `/v1/embeddings`, `/v1/models`, spoken by
 * OpenAI, Azure OpenAI and compatible servers (Ollama, vLLM, ...).
 *
 * | kind                | auth                                | path                                                         |
 * |---------------------|-------------------------------------|--------------------------------------------------------------|
 * | `openai`            | `authorization: Bearer <key>`       | base + `/v1/...`                                             |
 * | `openai-compatible` | Bearer (none when the key is empty) | base + `/v1/...`                                             |
 * | `azure-openai`      | `api-key: <key>`                    | base + `/openai/deployments/<deployment>/<op>?api-version=…` |
 *
 * Usage: `usage.prompt_tokens` / `usage.completion_tokens` (the Responses API's `input_tokens` /
 * `output_tokens` too; embeddings report prompt tokens only, output 0). Streamed chat asks for the
 * final usage chunk (`stream_options.include_usage`, unless the provider says `streamUsage: false`);
 * that chunk has `choices: []` and is taken out again when the client had not asked for it.
 * Errors: `{ error: { message, type, param, code } }`; in a stream, a `data:` event with that JSON.
 */
import { z } from 'zod';
import { combine, count, createDeferredText, estimateRequestInputTokens, estimateTokens, isRecord, parseJson, textChars, type ReportedUsage, type StreamUsageTracker, type Usage } from '../tokens.ts';
import type { SseBlock } from '../sse.ts';
import { baseHeaders, clientMessage, jsonBody } from './common.ts';
import type { SafeErrorFields, VendorErrorInput, WireAdapter } from './types.ts';

/** The Azure OpenAI API version used when a provider names none (a GA version). */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';

const AZURE_OPERATIONS = new Set(['chat/completions', 'completions', 'embeddings']);

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

// The `code` values OpenAI itself uses for these situations, so client code that checks
// `err.code === 'invalid_api_key'` keeps working; other codes are sent in lower case.
const OPENAI_CODE_ALIASES: Record<string, string> = {
  UNAUTHENTICATED: 'invalid_api_key',
  MODEL_NOT_FOUND: 'model_not_found',
  RATE_LIMITED: 'rate_limit_exceeded',
  MONTHLY_LIMIT_REACHED: 'insufficient_quota',
};

/** The OpenAI `error.type` for a status. */
export function openAIType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 429) return 'rate_limit_error';
  if (status >= 500) return 'server_error';
  return 'invalid_request_error';
}

/**
 * The OpenAI-shaped body for a Gatehouse error.
 * @example toOpenAIErrorBody({ status: 401, code: 'UNAUTHENTICATED', message: 'Invalid API key.' })
 */
export function toOpenAIErrorBody(input: VendorErrorInput): OpenAIErrorBody {
  return {
    error: {
      message: clientMessage(input),
      type: openAIType(input.status),
      param: null,
      code: OPENAI_CODE_ALIASES[input.code] ?? input.code.toLowerCase(),
    },
  };
}

/** The counts a usage object reports (the Responses API's names included). */
function readUsage(usage: unknown): ReportedUsage {
  if (!isRecord(usage)) return {};
  const input = count(usage.prompt_tokens) ?? count(usage.input_tokens);
  const output = count(usage.completion_tokens) ?? count(usage.output_tokens);
  // Embeddings report prompt tokens only: there is no output to count.
  return { input, output: output ?? (input !== undefined ? 0 : undefined) };
}

/** Generated text of the choices of a chunk (`delta`) or a completion (`text`). */
function choicesChars(choices: unknown[]): number {
  let chars = 0;
  for (const choice of choices) if (isRecord(choice)) chars += textChars(choice.delta) + textChars(choice.text);
  return chars;
}

/**
 * A JSON text with a `usage` key holding an object. A key spelled with escapes (`"\u0075sage"`)
 * is not seen: that stream's usage is then estimated, and flagged so.
 */
const USAGE_OBJECT = /"usage"\s*:\s*\{/;

function streamUsageTracker(requestBody: unknown): StreamUsageTracker {
  let reported: ReportedUsage = {};
  let finished = false;
  const text = createDeferredText((payload) => (Array.isArray(payload.choices) ? choicesChars(payload.choices) : 0));
  let outputChars = 0;
  const observe = (block: SseBlock): { usageOnly: boolean } => {
    if (block.data === '[DONE]') {
      finished = true;
      return { usageOnly: false };
    }
    // Only a chunk with a usage object is read now; text deltas wait (createDeferredText).
    if (!USAGE_OBJECT.test(block.data)) {
      text.defer(block.data);
      return { usageOnly: false };
    }
    const chunk = parseJson(block.data);
    if (!isRecord(chunk)) return { usageOnly: false };
    const choices = chunk.choices;
    if (Array.isArray(choices)) outputChars += choicesChars(choices);
    if (isRecord(chunk.usage)) {
      // Some compatible servers repeat a running total in every chunk: the last one wins.
      const u = readUsage(chunk.usage);
      reported = { input: u.input ?? reported.input, output: u.output ?? reported.output };
      return { usageOnly: Array.isArray(choices) && choices.length === 0 };
    }
    return { usageOnly: false };
  };
  return {
    observe: (block) => (block.hasData ? observe(block) : { usageOnly: false }),
    get finished(): boolean {
      return finished;
    },
    usage: (): Usage =>
      combine(
        reported,
        () => estimateRequestInputTokens(requestBody),
        () => estimateTokens(outputChars + text.chars()),
      ),
  };
}

export const openaiAdapter: WireAdapter<'openai', OpenAIErrorBody> = {
  format: 'openai',
  kinds: ['openai', 'openai-compatible', 'azure-openai'],
  errorSchema: z.object({ error: z.object({ message: z.string(), type: z.string(), param: z.string().nullable(), code: z.string().nullable() }) }),

  buildCall(input, { origin, basePath }) {
    const { provider, apiKey, model } = input;
    const headers = baseHeaders(input.stream);
    let path: string;
    if (provider.kind === 'azure-openai') {
      const operation = input.path.slice('/v1/'.length);
      if (!AZURE_OPERATIONS.has(operation)) throw new TypeError(`gateway: azure-openai does not serve ${input.path}`);
      const deployment = provider.deployments?.[model] ?? model;
      const version = provider.apiVersion ?? DEFAULT_AZURE_API_VERSION;
      path = `${basePath}/openai/deployments/${encodeURIComponent(deployment)}/${operation}?api-version=${encodeURIComponent(version)}`;
      headers['api-key'] = apiKey;
    } else {
      path = `${basePath}${input.path}`;
      if (apiKey.length > 0) headers.authorization = `Bearer ${apiKey}`;
    }
    let addedUsageOption = false;
    const body = jsonBody(input, headers, (upstreamBody) => {
      if (input.stream && provider.streamUsage !== false && input.path === '/v1/chat/completions') {
        const existing = isRecord(upstreamBody.stream_options) ? upstreamBody.stream_options : {};
        addedUsageOption = existing.include_usage !== true;
        upstreamBody.stream_options = { ...existing, include_usage: true };
      }
    });
    return { origin, path, method: input.method, headers, body, addedUsageOption };
  },
  modelsQuery: () => '',
  nextModelsCursor: () => null,

  estimateInputTokens: estimateRequestInputTokens,
  usageFromJson(response, requestBody) {
    const record = isRecord(response) ? response : {};
    return combine(
      readUsage(record.usage),
      () => estimateRequestInputTokens(requestBody),
      () => estimateTokens(textChars(record.choices)),
    );
  },
  streamUsageTracker,

  errorBody: toOpenAIErrorBody,
  sseErrorEvent: (input) => `data: ${JSON.stringify(toOpenAIErrorBody(input))}\n\n`,
  upstreamErrorBody: (status, fields: SafeErrorFields) => ({
    error: { message: fields.message, type: fields.type ?? openAIType(status), param: fields.param, code: fields.code },
  }),
};
