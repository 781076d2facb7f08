/**
 * How each provider kind is called: the URL, the auth headers and the body changes. The client
 * speaks one of the wire formats (src/gateway/adapters/); a provider kind serves one of them, and
 * that format's adapter builds the call.
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
import type { ProviderKind } from '../config/gateway.ts';
import { adapterOfKind, type ProviderBase, type UpstreamCall, type UpstreamCallInput, type WireFormat } from './adapters/index.ts';

// The schemas live with the config schema (`gateway.providers`), which validates them.
export { PROVIDER_KINDS, providerSchema, type ProviderKind } from '../config/gateway.ts';
export { DEFAULT_ANTHROPIC_VERSION, DEFAULT_AZURE_API_VERSION, type ProviderConfig, type UpstreamCall, type UpstreamCallInput } from './adapters/index.ts';

/** The wire format a provider kind speaks. */
export function formatOfKind(kind: ProviderKind): WireFormat {
  return adapterOfKind(kind).format;
}

// Base URLs parsed once, not on every call. Bounded: workspace providers can come and go.
const parsedBases = new Map<string, ProviderBase>();
const MAX_PARSED_BASES = 10_000;

/** A provider base URL's origin and its path without a trailing `/` or `/v1`. */
function parsedBase(baseUrl: string): ProviderBase {
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
  const { provider } = input;
  if (!input.path.startsWith('/v1/')) throw new TypeError(`gateway: unsupported path ${input.path}`);
  return adapterOfKind(provider.kind).buildCall(input, parsedBase(provider.baseUrl));
}
