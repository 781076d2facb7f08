/**
 * The `gateway` section of the configuration (GW-1..4): upstream policy, timeouts, retries,
 * breakers, prices, platform-wide providers and their keys, key and metering settings.
 *
 * It lives in src/config, not in src/gateway, so that the config schema imports no feature; the
 * gateway re-exports these schemas (src/gateway/config.ts) and parses partial settings with them.
 * The few pure checks the schema needs (host patterns, CIDRs, prices) live here for that reason.
 */
import { isIP } from 'node:net';
import { z } from 'zod';
import { opt, refineUniqueIds } from './option-meta.ts';
import { httpUrlSchema } from './url.ts';

// ---------------------------------------------------------------------------------------------
// Hosts and CIDRs

const LABEL_CHARS = /^[a-z0-9_-]+$/;

/** A DNS label: 1 to 63 letters, digits, '-' or '_', not starting or ending with '-'. */
function isHostLabel(label: string): boolean {
  return label.length >= 1 && label.length <= 63 && LABEL_CHARS.test(label) && !label.startsWith('-') && !label.endsWith('-');
}

/** Lowercase, no trailing dot, no IPv6 brackets: the form hostnames are compared in. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/** An allowlist entry split into its host pattern and its port rule. */
export interface HostEntry {
  /** The host pattern in compared form (see normalizeHost): a name, `*.suffix` or an IP literal. */
  host: string;
  /** A port, `*` for any port, or null for the scheme's default port (443, or 80 for http). */
  port: number | '*' | null;
}

const PORT_TEXT = /^\d{1,5}$/;

/**
 * Splits `host`, `host:port`, `host:*`, `[v6]`, `[v6]:port` or a bare IPv6 literal. Returns null
 * when the port part is not a port (1-65535 or `*`).
 */
export function parseHostEntry(entry: string): HostEntry | null {
  const text = entry.trim();
  let host = text;
  let portText: string | undefined;
  if (text.startsWith('[')) {
    const close = text.indexOf(']');
    if (close === -1) return null;
    host = text.slice(0, close + 1);
    const rest = text.slice(close + 1);
    if (rest !== '') {
      if (!rest.startsWith(':')) return null;
      portText = rest.slice(1);
    }
  } else if (text.split(':').length === 2) {
    // One colon: host:port. More than one: a bare IPv6 literal, which carries no port.
    [host = '', portText] = text.split(':');
  }
  if (portText === undefined) return { host: normalizeHost(host), port: null };
  if (portText === '*') return { host: normalizeHost(host), port: '*' };
  if (!PORT_TEXT.test(portText)) return null;
  const port = Number(portText);
  if (port < 1 || port > 65_535) return null;
  return { host: normalizeHost(host), port };
}

/** Why `pattern` is not a valid allowlist entry, or null when it is. */
export function checkHostPattern(pattern: string): string | null {
  const entry = parseHostEntry(pattern);
  if (entry === null) return 'the port is not a number from 1 to 65535 or *';
  const p = entry.host;
  if (isIP(p) !== 0) return null;
  const name = p.startsWith('*.') ? p.slice(2) : p;
  if (name.includes('*')) return 'a wildcard may only be the whole first label, as in *.example.com';
  const labels = name.split('.');
  if (p.startsWith('*.') && labels.length < 2) return 'a wildcard needs a suffix of at least two labels, as in *.example.com';
  if (!labels.every(isHostLabel)) return 'not a hostname';
  return null;
}

/** Why `cidr` is not a valid CIDR or address, or null when it is. */
export function checkCidr(cidr: string): string | null {
  const [address = '', prefixText, ...rest] = cidr.trim().split('/');
  const family = isIP(address);
  if (family === 0 || rest.length > 0) return 'not an IP address or CIDR';
  if (prefixText === undefined) return null;
  if (!/^\d{1,3}$/.test(prefixText)) return 'the prefix length is not a number';
  const prefix = Number(prefixText);
  if (prefix > (family === 4 ? 32 : 128)) return 'the prefix length is too long';
  return null;
}

export const hostPattern = z.string().superRefine((value, ctx) => {
  const problem = checkHostPattern(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
export const cidr = z.string().superRefine((value, ctx) => {
  const problem = checkCidr(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const ms = (min: number, max: number) => z.number().int().min(min).max(max);

// ---------------------------------------------------------------------------------------------
// Prices (integer micro-dollars; see src/gateway/prices.ts)

const MICRO = 1_000_000n;
const DIGITS = /^\d+$/;

/** Integer micro-dollars per million tokens from a decimal text, or null when it is not one we accept. */
function parseMicroPerMillion(text: string): bigint | null {
  const [whole = '', fraction, ...rest] = text.split('.');
  if (rest.length > 0 || whole.length < 1 || whole.length > 7 || !DIGITS.test(whole)) return null;
  if (fraction !== undefined && (fraction.length < 1 || fraction.length > 6 || !DIGITS.test(fraction))) return null;
  // No float on the way: the digits become an integer directly.
  return BigInt(whole) * MICRO + BigInt((fraction ?? '').padEnd(6, '0'));
}

/** A price in USD per million tokens: a decimal string or number, >= 0, at most 6 decimals. */
const usdPerMillion = z
  .union([z.string(), z.number()])
  .transform((value, ctx) => {
    const parsed = parseMicroPerMillion(typeof value === 'number' ? String(value) : value.trim());
    if (parsed === null) {
      ctx.addIssue({ code: 'custom', message: 'a price is a decimal number of USD per million tokens, at most 6 decimals and below 10 000 000' });
      return z.NEVER;
    }
    return parsed;
  });

/** One price entry: `model` is an exact model name or a pattern where `*` matches any run of characters. */
export const modelPriceSchema = z.strictObject({
  model: z.string().min(1).max(200),
  inputPerMillion: usdPerMillion,
  outputPerMillion: usdPerMillion,
});

/** The price table: exact names win over patterns; among patterns the first listed wins. */
export const priceTableSchema = z.array(modelPriceSchema).max(10_000).default([]);

export type PriceTableInput = z.input<typeof priceTableSchema>;

/** A price as the config holds it: checked like `usdPerMillion` but kept as written (no BigInt in the frozen config, which doctor prints). */
const usdPerMillionText = z.union([z.string(), z.number()]).superRefine((value, ctx) => {
  if (parseMicroPerMillion(typeof value === 'number' ? String(value) : value.trim()) === null) {
    ctx.addIssue({ code: 'custom', message: 'a price is a decimal number of USD per million tokens, at most 6 decimals and below 10 000 000' });
  }
});

/** `gateway.prices`: validated at load, compiled by the gateway (createPriceTable). */
const priceTableConfigSchema = z
  .array(z.strictObject({ model: z.string().min(1).max(200), inputPerMillion: usdPerMillionText, outputPerMillion: usdPerMillionText }))
  .max(10_000)
  .default([]);

// ---------------------------------------------------------------------------------------------
// Providers

export const PROVIDER_KINDS = ['openai', 'anthropic', 'azure-openai', 'openai-compatible'] as const;
export type ProviderKind = (typeof PROVIDER_KINDS)[number];

/** A provider id: it names the provider in aliases, usage records and logs. */
export const providerIdSchema = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,63}$/, 'lowercase letters, digits, "_" or "-", at most 64');

/** A model name, or a pattern where `*` matches any run of characters. */
export const modelPatternSchema = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces');

/**
 * A provider's API root. No credentials, query or fragment: keys travel only in headers, and a
 * base URL is shown back by the API, so nothing secret may hide in it.
 */
export const providerBaseUrlSchema = httpUrlSchema({ bare: true });

/** A configured provider (platform-wide or a tenant's own), without its key. */
export const providerSchema = z.strictObject({
  id: z.string().min(1).max(100),
  kind: z.enum(PROVIDER_KINDS),
  baseUrl: providerBaseUrlSchema,
  /** Azure: the `api-version` query value. Anthropic: the `anthropic-version` header. */
  apiVersion: z.string().min(1).max(50).optional(),
  /** Azure: model name -> deployment name (a model without an entry is its own deployment name). */
  deployments: z.record(z.string().min(1).max(200), z.string().min(1).max(200)).optional(),
  /** OpenAI formats: ask for the usage chunk of streams (`stream_options.include_usage`). Turn off for a compatible server that refuses the option. Default true. */
  streamUsage: z.boolean().optional(),
});

/** A platform-wide provider: a provider with the models it serves. */
export const platformProviderSchema = providerSchema.extend({
  id: providerIdSchema,
  /** Model names or `*` patterns this provider serves; a request for another model never reaches it. */
  models: z.array(modelPatternSchema).min(1).max(1000),
});

export type PlatformProviderConfig = z.infer<typeof platformProviderSchema>;

// ---------------------------------------------------------------------------------------------
// The section

const upstreamFields = {
  allowedHosts: opt(z.array(hostPattern).max(1000).default(['api.openai.com', 'api.anthropic.com', '*.openai.azure.com']), {
    doc: 'Hosts, each with the ports allowed on it, that provider base URLs may name, platform-wide and bring-your-own alike. An entry is a host (exact, an IP literal, or `*.suffix` for any name below the suffix) with an optional port: `api.openai.com` allows only the default port of the URL\'s scheme (443 for https, 80 for http), `ollama.internal:11434` only port 11434, `[fd00::5]:8443` an IPv6 literal with a port, and `vllm.internal:*` any port of that host (only for hosts you run). List a host once per port. Checked before DNS; the resolved address is checked too.',
  }),
  allowedCidrs: opt(z.array(cidr).max(1000).default([]), {
    doc: 'CIDRs allowed although private, loopback or reserved (e.g. an in-house model server on 10.0.5.0/24). Empty: providers must resolve to public addresses only (SSRF and DNS-rebinding defence).',
  }),
  allowInsecureHttp: opt(z.boolean().default(false), {
    doc: 'Allow plain `http:` provider base URLs (e.g. Ollama on a private network). Vendor keys then cross the network in clear.',
  }),
  connectTimeoutMs: opt(ms(100, 60_000).default(5_000), { doc: 'TCP and TLS connect timeout to a provider.' }),
  keepAliveTimeoutMs: opt(ms(1_000, 600_000).default(10_000), { doc: 'How long an idle pooled connection to a provider is kept.' }),
  maxConnectionsPerOrigin: opt(z.number().int().min(1).max(100_000).default(256), { doc: 'Most connections per provider origin.' }),
};

const timeoutsFields = {
  firstByteMs: opt(ms(100, 600_000).default(30_000), {
    doc: 'Time to the response headers of a streaming call (connect included); providers answer streams at once.',
  }),
  firstByteNonStreamMs: opt(ms(100, 3_600_000).default(300_000), {
    doc: 'Time to the response headers of a non-streaming call: the provider sends them after the whole generation.',
  }),
  idleMs: opt(ms(100, 3_600_000).default(120_000), { doc: 'Longest pause between two chunks of a provider\'s response body.' }),
  totalMs: opt(ms(100, 3_600_000).default(600_000), { doc: 'Longest whole gateway call, retries and fallbacks included.' }),
};

const retryFields = {
  maxRetries: opt(z.number().int().min(0).max(5).default(2), {
    doc: 'Retries per provider after the first attempt (connect errors, timeouts, 5xx, 429), only before the first byte reaches the client.',
  }),
  baseDelayMs: opt(ms(0, 60_000).default(250), { doc: 'First retry backoff; it doubles each retry, half fixed and half random.' }),
  maxDelayMs: opt(ms(0, 300_000).default(4_000), {
    doc: 'Backoff ceiling. A provider\'s Retry-After longer than this moves on to the next fallback instead of waiting.',
  }),
};

const breakerFields = {
  windowMs: opt(ms(1_000, 3_600_000).default(30_000), { doc: 'Rolling window in which a provider\'s failures are counted.' }),
  volumeThreshold: opt(z.number().int().min(1).max(10_000).default(5), { doc: 'Calls needed in the window before a provider\'s breaker may open.' }),
  errorThresholdPercentage: opt(z.number().min(1).max(100).default(50), {
    doc: 'A provider\'s breaker opens when more than this share of the window\'s calls failed (connect errors, timeouts, 5xx).',
  }),
  resetTimeoutMs: opt(ms(100, 3_600_000).default(30_000), { doc: 'How long an open breaker waits before letting one probe call through.' }),
};

/** `gateway.upstream`: which providers may be reached, and how connections are kept. */
export const upstreamConfigSchema = z.strictObject(upstreamFields);
/** `gateway.timeouts`. */
export const timeoutsConfigSchema = z.strictObject(timeoutsFields);
/** `gateway.retry`: retries happen only before the first byte reaches the client. */
export const retryConfigSchema = z.strictObject(retryFields);
/** `gateway.breaker`: one circuit breaker per provider. */
export const breakerConfigSchema = z.strictObject(breakerFields);

/** The whole `gateway` section, every leaf documented for docs/config.md. */
export const gatewaySection = z
  .strictObject({
    upstream: upstreamConfigSchema.prefault({}),
    timeouts: timeoutsConfigSchema.prefault({}),
    retry: retryConfigSchema.prefault({}),
    breaker: breakerConfigSchema.prefault({}),
    prices: opt(priceTableConfigSchema, {
      doc: 'Model prices for metering, as JSON: `[{"model": "gpt-4o-mini*", "inputPerMillion": "0.15", "outputPerMillion": "0.6"}]` (USD per million tokens, at most 6 decimals; `*` matches any run of characters; exact names win, then the first matching pattern). A model without a price is metered with no cost.',
    }),
    providers: opt(
      z
        .array(platformProviderSchema)
        .max(100)
        .default([])
        .superRefine(refineUniqueIds),
      {
        doc: 'Platform-wide providers, as JSON: `[{"id": "openai", "kind": "openai", "baseUrl": "https://api.openai.com", "models": ["gpt-4o*"]}]`. kind is openai, anthropic, azure-openai or openai-compatible; optional apiVersion, deployments (Azure model -> deployment) and streamUsage. Their keys come from gateway.providerKeys. A workspace\'s own providers are tried before these.',
      },
    ),
    providerKeys: opt(z.record(providerIdSchema, z.string().min(1).max(4096)).optional(), {
      doc: 'Vendor keys of the platform-wide providers, as a JSON object from provider id to key: `{"openai": "sk-…"}`. Never logged, never in a response or an error.',
      secret: true,
    }),
    bodyLimitBytes: opt(z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024), {
      doc: 'Largest request body the AI routes accept (prompts are larger than other API bodies). Larger bodies get 413 in the vendor\'s error shape.',
    }),
    keyCacheSeconds: opt(z.number().int().min(1).max(3600).default(60), {
      doc: 'How long a node keeps an API key (and a workspace\'s routing and provider keys) it read. Revocations and changes evict them on every node through kv pub/sub at once; this bounds staleness only if an eviction message is lost.',
    }),
    modelListCacheSeconds: opt(z.number().int().min(1).max(86_400).default(300), {
      doc: 'How long a node keeps the model list a provider with `*` patterns answered (`GET {baseUrl}/v1/models`), per provider and, for a workspace\'s own providers, per workspace and key. `GET /v1/models` lists the names it answered that match the patterns.',
    }),
    modelListFailureCacheSeconds: opt(z.number().int().min(0).max(3600).default(10), {
      doc: 'How long a node remembers that a provider could not be listed (error, timeout, not a model list) before asking it again; `GET /v1/models` names it under `unlisted` meanwhile.',
    }),
    modelListTimeoutMs: opt(z.number().int().min(100).max(60_000).default(5_000), {
      doc: 'Time allowed for one provider\'s model list (all its pages); past it the provider is `unlisted` with reason `upstream_timeout`.',
    }),
    maxKeysPerWorkspace: opt(z.number().int().min(1).max(100_000).default(100), { doc: 'Most unrevoked API keys in one workspace.' }),
    usageFlushMs: opt(z.number().int().min(50).max(60_000).default(1_000), {
      doc: 'Usage and last-used times are buffered in memory and written in batches this often (and when the buffer fills, and at shutdown): no database write on the request path. Calls of one key, model and outcome in the same minute are written as one usage row that counts them. This is also what a crash (kill -9) of a node can lose: the calls acknowledged since its last committed write, about this long plus the write itself, and calls still running; and by as many calls a key can exceed its monthly limit, which is rebuilt from the written usage. Lower it to narrow that window at the cost of more, smaller writes.',
    }),
    usageMaxBuffered: opt(z.number().int().min(100).max(10_000_000).default(100_000), {
      doc: 'Most usage rows (one per key, model, outcome and minute, however many calls each counts) held in memory while the database cannot take them; beyond it the oldest are dropped and an error is logged.',
    }),
  })
  .prefault({});

export type GatewayConfig = z.infer<typeof gatewaySection>;
export type UpstreamConfig = z.infer<typeof upstreamConfigSchema>;
export type TimeoutsConfig = z.infer<typeof timeoutsConfigSchema>;
export type RetryConfig = z.infer<typeof retryConfigSchema>;
export type BreakerConfig = z.infer<typeof breakerConfigSchema>;
