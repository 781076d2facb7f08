/**
 * The gateway's configuration, as it will appear under `gateway` in src/config/schema.ts (where
 * it moves when the gateway is wired in; until then it is validated here).
 */
import { z } from 'zod';
import { priceTableSchema } from './prices.ts';
import { checkCidr, checkHostPattern } from './upstream.ts';

const hostPattern = z.string().superRefine((value, ctx) => {
  const problem = checkHostPattern(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const cidr = z.string().superRefine((value, ctx) => {
  const problem = checkCidr(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

/** `gateway.upstream`: which providers may be reached, and how connections are kept. */
export const upstreamConfigSchema = z.strictObject({
  /** Exact hostnames or `*.suffix` patterns that provider base URLs may name. */
  allowedHosts: z.array(hostPattern).max(1000).default(['api.openai.com', 'api.anthropic.com', '*.openai.azure.com']),
  /** CIDRs allowed although private or reserved (e.g. an in-house model server on 10.0.5.0/24). Empty: only public addresses. */
  allowedCidrs: z.array(cidr).max(1000).default([]),
  /** Allow plain `http:` base URLs (e.g. Ollama on a private network). Vendor keys then cross the network in clear. */
  allowInsecureHttp: z.boolean().default(false),
  connectTimeoutMs: ms(100, 60_000).default(5_000),
  /** How long an idle pooled connection is kept. */
  keepAliveTimeoutMs: ms(1_000, 600_000).default(10_000),
  /** Maximum connections per upstream origin. */
  maxConnectionsPerOrigin: z.number().int().min(1).max(100_000).default(256),
});

/** `gateway.timeouts`. */
export const timeoutsConfigSchema = z.strictObject({
  /** Time to the response headers of a streaming call (connect included). Providers answer streams at once. */
  firstByteMs: ms(100, 600_000).default(30_000),
  /** Time to the response headers of a non-streaming call: the provider sends them after the whole generation. */
  firstByteNonStreamMs: ms(100, 3_600_000).default(300_000),
  /** Longest pause between two chunks of a response body. */
  idleMs: ms(100, 3_600_000).default(120_000),
  /** Longest whole exchange, retries and fallbacks included. */
  totalMs: ms(100, 3_600_000).default(600_000),
});

/** `gateway.retry`: retries happen only before the first byte reaches the client. */
export const retryConfigSchema = z.strictObject({
  /** Retries per target after the first attempt (on connect errors, timeouts, 5xx and 429). */
  maxRetries: z.number().int().min(0).max(5).default(2),
  /** First backoff; it doubles each retry, with jitter (half fixed, half random). */
  baseDelayMs: ms(0, 60_000).default(250),
  /** Backoff ceiling. A `Retry-After` longer than this skips to the next fallback instead of waiting. */
  maxDelayMs: ms(0, 300_000).default(4_000),
});

/** `gateway.breaker`: one circuit breaker per provider. */
export const breakerConfigSchema = z.strictObject({
  /** The rolling window failures are counted in. */
  windowMs: ms(1_000, 3_600_000).default(30_000),
  /** Calls needed in the window before the breaker may open. */
  volumeThreshold: z.number().int().min(1).max(10_000).default(5),
  /** The breaker opens when more than this share of the window's calls failed (connect errors, timeouts, 5xx). */
  errorThresholdPercentage: z.number().min(1).max(100).default(50),
  /** How long the breaker stays open before one probe call is let through. */
  resetTimeoutMs: ms(100, 3_600_000).default(30_000),
});

/** The whole `gateway` section. */
export const gatewayConfigSchema = z.strictObject({
  upstream: upstreamConfigSchema.default(upstreamConfigSchema.parse({})),
  timeouts: timeoutsConfigSchema.default(timeoutsConfigSchema.parse({})),
  retry: retryConfigSchema.default(retryConfigSchema.parse({})),
  breaker: breakerConfigSchema.default(breakerConfigSchema.parse({})),
  /** USD prices per million tokens by model (exact name or `*` pattern); see src/gateway/prices.ts. */
  prices: priceTableSchema,
});

export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
export type UpstreamConfig = z.infer<typeof upstreamConfigSchema>;
export type TimeoutsConfig = z.infer<typeof timeoutsConfigSchema>;
export type RetryConfig = z.infer<typeof retryConfigSchema>;
export type BreakerConfig = z.infer<typeof breakerConfigSchema>;
