/**
 * The wire-format registry: one adapter per format the gateway speaks (./types.ts). The proxy,
 * metering, the routes and the model listing look an adapter up here by format, or by provider
 * kind, and never branch on a format themselves.
 *
 * To add a wire format: a file implementing `WireAdapter` next to these, its unit tests, and its
 * line in ADAPTERS (its provider kinds go in PROVIDER_KINDS, src/config/gateway.ts).
 */
import type { ProviderKind } from '../../config/gateway.ts';
import { anthropicAdapter } from './anthropic.ts';
import { openaiAdapter } from './openai.ts';
import type { WireAdapter } from './types.ts';

const ADAPTERS = [openaiAdapter, anthropicAdapter] as const;

/** The wire formats the gateway speaks: the OpenAI one (OpenAI, Azure OpenAI, compatible servers) and Anthropic's. */
export type WireFormat = (typeof ADAPTERS)[number]['format'];

/** An error body in any registered format. */
export type VendorErrorBody = ReturnType<(typeof ADAPTERS)[number]['errorBody']>;
type AnyAdapter = WireAdapter<WireFormat, VendorErrorBody>;

const byFormat = new Map<string, WireAdapter>(ADAPTERS.map((a) => [a.format, a]));
const byKind = new Map<ProviderKind, WireAdapter>(ADAPTERS.flatMap((a) => a.kinds.map((kind) => [kind, a] as const)));

/** The adapter of a wire format. */
export function adapterFor(format: WireFormat): AnyAdapter {
  const adapter = byFormat.get(format);
  if (adapter === undefined) throw new TypeError(`gateway: no adapter for the ${String(format)} wire format`);
  return adapter as AnyAdapter;
}

/** The adapter of the wire format a provider kind speaks. */
export function adapterOfKind(kind: ProviderKind): AnyAdapter {
  const adapter = byKind.get(kind);
  if (adapter === undefined) throw new TypeError(`gateway: provider kind ${kind} speaks no known wire format`);
  return adapter as AnyAdapter;
}

/** Every registered format, in registration order. */
export const WIRE_FORMATS: readonly WireFormat[] = ADAPTERS.map((a) => a.format);

export type { ModelsPage, ProviderBase, ProviderConfig, SafeErrorFields, UpstreamCall, UpstreamCallInput, VendorErrorInput, WireAdapter } from './types.ts';
export { DEFAULT_ANTHROPIC_VERSION, anthropicType, toAnthropicErrorBody, type AnthropicErrorBody } from './anthropic.ts';
export { DEFAULT_AZURE_API_VERSION, openAIType, toOpenAIErrorBody, type OpenAIErrorBody } from './openai.ts';
