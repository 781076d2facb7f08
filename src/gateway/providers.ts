/**
 * How each provider kind is called: the URL, the auth headers and the body changes. The client
 * speaks one of two wire formats (OpenAI's or Anthropic's); a provider kind serves one of them.
 *
 * | kind                | format    | auth                                   | path                                                          |
 * |---------------------|-----------|----------------------------------------|---------------------------------------------------------------|
 * | `openai`            | openai    | `authorization: Bearer <key>`          | base + `/v1/...`                                              |
 * | `openai-compatible` | openai    | Bearer (none when the key is empty)    | base + `/v1/...`                                              |
 * | `azure-openai`      | openai    | `api-key: <key>`                       | base + `/openai/deployments/<deployment>/<op>?api-version=…`  |
 * | `anthropic`         | anthropic | `x-api-key: <key>` + `anthropic-version` | base + `/v1/messages`                                       |
 *
 * `baseUrl` is the API root without `/v1` (`https://api.openai.com`, `https://api.anthropic.com`,
 * `https://<resource>.openai.azure.com`, `http://ollama.internal:11434`); a trailing `/v1` is
 * tolerated because the SDKs' base URLs carry one.
 */
import type { z } from 'zod';
import type { ProviderKind, providerSchema } from '../config/gateway.ts';
import type { WireFormat } from './usage.ts';

// The schemas live with the config schema (`gateway.providers`), which validates them.
export { PROVIDER_KINDS, providerSchema, type ProviderKind } from '../config/gateway.ts';

/** The Azure OpenAI API version used when a provider names none (a GA version). */
export const DEFAULT_AZURE_API_VERSION = '2024-10-21';
/** The `anthropic-version` header sent when a provider names none. */
export const DEFAULT_ANTHROPIC_VERSION = '2023-06-01';

export type ProviderConfig = z.infer<typeof providerSchema>;

/** The wire format a provider kind speaks. */
export function formatOfKind(kind: ProviderKind): WireFormat {
  return kind === 'anthropic' ? 'anthropic' : 'openai';
}

/** One call to make upstream. */
export interface UpstreamCall {
  origin: string;
  path: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body: string | undefined;
  /** True when the proxy added `stream_options.include_usage` the client did not ask for. */
  addedUsageOption: boolean;
}

export interface UpstreamCallInput {
  provider: ProviderConfig;
  apiKey: string;
  model: string;
  /** The API path the client called, e.g. `/v1/chat/completions`. */
  path: string;
  method: 'GET' | 'POST';
  body: Record<string, unknown> | undefined;
  stream: boolean;
}

const AZURE_OPERATIONS = new Set(['chat/completions', 'completions', 'embeddings']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

// Base URLs parsed once, not on every call. Bounded: workspace providers can come and go.
const parsedBases = new Map<string, { origin: string; basePath: string }>();
const MAX_PARSED_BASES = 10_000;

/** A provider base URL's origin and its path without a trailing `/` or `/v1`. */
function parsedBase(baseUrl: string): { origin: string; basePath: string } {
  let parsed = parsedBases.get(baseUrl);
  if (parsed === undefined) {
    const base = new URL(baseUrl);
    let basePath = base.pathname.replace(/\/+$/, '');
    if (basePath.endsWith('/v1')) basePath = basePath.slice(0, -3);
    parsed = { origin: base.origin, basePath };
    if (parsedBases.size >= MAX_PARSED_BASES) parsedBases.clear();
    parsedBases.set(baseUrl, parsed);
  }
  return parsed;
}

/**
 * The upstream request for a client call to `input.path`, for the provider's kind. Throws a
 * TypeError for an operation the kind cannot serve (a routing bug, not a client error).
 */
export function buildUpstreamCall(input: UpstreamCallInput): UpstreamCall {
  const { provider, apiKey, model, stream } = input;
  if (!input.path.startsWith('/v1/')) throw new TypeError(`gateway: unsupported path ${input.path}`);
  const { origin, basePath } = parsedBase(provider.baseUrl);

  const headers: Record<string, string> = {
    accept: stream ? 'text/event-stream' : 'application/json',
    'user-agent': 'Gatehouse',
  };
  let path: string;
  switch (provider.kind) {
    case 'azure-openai': {
      const operation = input.path.slice('/v1/'.length);
      if (!AZURE_OPERATIONS.has(operation)) throw new TypeError(`gateway: azure-openai does not serve ${input.path}`);
      const deployment = provider.deployments?.[model] ?? model;
      const version = provider.apiVersion ?? DEFAULT_AZURE_API_VERSION;
      path = `${basePath}/openai/deployments/${encodeURIComponent(deployment)}/${operation}?api-version=${encodeURIComponent(version)}`;
      headers['api-key'] = apiKey;
      break;
    }
    case 'anthropic':
      path = `${basePath}${input.path}`;
      headers['x-api-key'] = apiKey;
      headers['anthropic-version'] = provider.apiVersion ?? DEFAULT_ANTHROPIC_VERSION;
      break;
    default:
      path = `${basePath}${input.path}`;
      if (apiKey.length > 0) headers.authorization = `Bearer ${apiKey}`;
  }

  let body: string | undefined;
  let addedUsageOption = false;
  if (input.method === 'POST') {
    const upstreamBody: Record<string, unknown> = { ...input.body, model };
    if (stream) upstreamBody.stream = true;
    if (stream && formatOfKind(provider.kind) === 'openai' && provider.streamUsage !== false && input.path === '/v1/chat/completions') {
      const existing = isRecord(upstreamBody.stream_options) ? upstreamBody.stream_options : {};
      addedUsageOption = existing.include_usage !== true;
      upstreamBody.stream_options = { ...existing, include_usage: true };
    }
    body = JSON.stringify(upstreamBody);
    headers['content-type'] = 'application/json';
  }
  return { origin, path, method: input.method, headers, body, addedUsageOption };
}
