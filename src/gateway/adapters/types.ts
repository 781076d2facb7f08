/**
 * The contract of a wire format's adapter: everything the gateway does differently for the OpenAI
 * API, Anthropic's Messages API or any format added later. The proxy, metering, the routes and the
 * model listing depend on this interface only, through the registry (./index.ts); adding a wire
 * format is one file implementing it, registered there, plus its tests.
 */
import type { z } from 'zod';
import type { ProviderKind, providerSchema } from '../../config/gateway.ts';
import type { StreamUsageTracker, Usage } from '../tokens.ts';

export type ProviderConfig = z.infer<typeof providerSchema>;

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

/** A provider's base URL taken apart: its origin and its path without a trailing `/` or `/v1`. */
export interface ProviderBase {
  origin: string;
  basePath: string;
}

/** A Gatehouse error as the gateway routes render it. */
export interface VendorErrorInput {
  status: number;
  /** The Gatehouse error code (UPPER_SNAKE), e.g. `UNAUTHENTICATED`, `UPSTREAM_TIMEOUT`. */
  code: string;
  message: string;
  /** Extra response headers, e.g. `retry-after`. */
  headers?: Record<string, string>;
  /** The request id, echoed where the vendor's shape has a place for it. */
  requestId?: string;
}

/** The fields of a provider's 4xx kept for the client, each already checked (src/gateway/upstream-errors.ts). */
export interface SafeErrorFields {
  /** Always set: the vendor's message scrubbed, or a fixed one. */
  message: string;
  /** Short identifiers holding no copy of a key, or null. */
  type: string | null;
  code: string | null;
  param: string | null;
}

/** One page of a provider's model list, as far as paging goes. */
export interface ModelsPage {
  has_more?: boolean | undefined;
  last_id?: string | null | undefined;
}

/** `F`: the format's name; `B`: its error body. */
export interface WireAdapter<F extends string = string, B = unknown> {
  /** The format's name, as routes and routing say it. */
  readonly format: F;
  /** The provider kinds that speak this format (each kind speaks exactly one). */
  readonly kinds: readonly ProviderKind[];
  /** The schema of this format's error body, for the AI routes' documented responses. */
  readonly errorSchema: z.ZodType;

  /** The upstream request for a call (path, auth headers, body with the target's model). Throws a TypeError for an operation it cannot serve. */
  buildCall(input: UpstreamCallInput, base: ProviderBase): UpstreamCall;
  /** The query string of a model list request for the page after `afterId` (null: the first). */
  modelsQuery(afterId: string | null): string;
  /** The cursor of the next page of a model list, or null when `page` was the last. */
  nextModelsCursor(page: ModelsPage): string | null;

  /** Estimated input tokens of a request body. */
  estimateInputTokens(body: unknown): number;
  /** Usage of a complete JSON response: reported where the provider reports it, estimated elsewhere. */
  usageFromJson(response: unknown, requestBody: unknown): Usage;
  /** Follows a stream's events and works out its usage. */
  streamUsageTracker(requestBody: unknown): StreamUsageTracker;

  /** The error body for a Gatehouse error. */
  errorBody(input: VendorErrorInput): B;
  /** The SSE text that ends a started stream with a Gatehouse error. */
  sseErrorEvent(input: VendorErrorInput): string;
  /** A provider's 4xx, rebuilt for the client from checked fields only. */
  upstreamErrorBody(status: number, fields: SafeErrorFields, requestId?: string): B;
}
