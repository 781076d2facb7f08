/**
 * How a model resolves to providers (GW-2, GW-3): the workspace's alias chain, else the first
 * provider serving an allowed model, the workspace's own before the platform's; the model list.
 * The rules are described in src/gateway/routing.ts.
 */
import type { PlatformProviderConfig } from '../config/gateway.ts';
import { GatewayError } from './errors.ts';
import { matchesModelPattern } from './prices.ts';
import { formatOfKind, type ProviderConfig } from './providers.ts';
import type { ForwardTarget } from './proxy.ts';
import type { WireFormat } from './usage.ts';

/** A provider a call can be routed to, with its key in the clear (memory only). */
export interface RoutableProvider {
  /** `platform:<id>` or `workspace:<name>`: the label usage records and logs carry. */
  label: string;
  /** The name aliases refer to it by. */
  name: string;
  /** The provider as the proxy needs it; its id keys the circuit breaker. */
  config: ProviderConfig;
  models: readonly string[];
  apiKey: string;
}

/** One step of an alias's fallback chain. */
export interface AliasTarget {
  model: string;
  /** The provider name (a workspace provider's, else a platform provider's id); null for any that serves the model. */
  provider: string | null;
}

export interface Alias {
  name: string;
  targets: AliasTarget[];
}

export interface ModelSettings {
  /** Model names or `*` patterns the workspace may call; null: every model its providers serve. */
  allowedModels: string[] | null;
  aliases: Alias[];
}

export interface WorkspaceRouting {
  providers: RoutableProvider[];
  settings: ModelSettings;
}

function servedBy(provider: RoutableProvider, model: string): boolean {
  return provider.models.some((pattern) => matchesModelPattern(pattern, model));
}

/** A resolved chain: the targets in order, and each target's provider label by provider id. */
export interface Resolution {
  targets: ForwardTarget[];
  labels: Map<string, string>;
}

// Resolutions per platform provider list and routing object, both immutable and replaced when they
// change (a reload of the vendor keys makes a new platform list), so a cached answer can never
// outlive the providers and keys it came from. Bounded per workspace.
const resolvedByPlatform = new WeakMap<readonly RoutableProvider[], WeakMap<WorkspaceRouting, Map<string, Resolution>>>();
const MAX_RESOLUTIONS_PER_WORKSPACE = 1000;

/**
 * The fallback chain for `model` on a route of `format`, or MODEL_NOT_FOUND.
 * @example const { targets } = resolveTargets(routing, platformProviders, 'openai', 'gpt-4o-mini')
 */
export function resolveTargets(routing: WorkspaceRouting, platform: readonly RoutableProvider[], format: WireFormat, model: string): Resolution {
  let resolved = resolvedByPlatform.get(platform);
  if (!resolved) {
    resolved = new WeakMap();
    resolvedByPlatform.set(platform, resolved);
  }
  let byModel = resolved.get(routing);
  if (!byModel) {
    byModel = new Map();
    resolved.set(routing, byModel);
  }
  const key = `${format} ${model}`;
  const hit = byModel.get(key);
  if (hit) return hit;
  const resolution = resolveUncached(routing, platform, format, model);
  if (byModel.size < MAX_RESOLUTIONS_PER_WORKSPACE) byModel.set(key, resolution);
  return resolution;
}

/** Throws NO_PROVIDER_CONFIGURED when neither the platform nor the workspace has any provider. */
export function assertAnyProvider(routing: WorkspaceRouting, platform: readonly RoutableProvider[]): void {
  if (routing.providers.length === 0 && platform.length === 0) throw new GatewayError('NO_PROVIDER_CONFIGURED');
}

function resolveUncached(routing: WorkspaceRouting, platform: readonly RoutableProvider[], format: WireFormat, model: string): Resolution {
  assertAnyProvider(routing, platform);
  const candidates = [...routing.providers, ...platform].filter((p) => formatOfKind(p.config.kind) === format);
  const labels = new Map<string, string>();
  const toTarget = (provider: RoutableProvider, upstreamModel: string): ForwardTarget => {
    labels.set(provider.config.id, provider.label);
    return { provider: provider.config, apiKey: provider.apiKey, model: upstreamModel };
  };
  const alias = routing.settings.aliases.find((a) => a.name === model);
  if (alias) {
    const targets: ForwardTarget[] = [];
    for (const step of alias.targets) {
      const provider = candidates.find((p) => (step.provider === null || p.name === step.provider) && servedBy(p, step.model));
      if (provider) targets.push(toTarget(provider, step.model));
    }
    if (targets.length > 0) return { targets, labels };
    throw new GatewayError('MODEL_NOT_FOUND', `The model '${model}' does not exist or you do not have access to it.`);
  }
  const allowed = routing.settings.allowedModels;
  if (allowed === null || allowed.some((pattern) => matchesModelPattern(pattern, model))) {
    const provider = candidates.find((p) => servedBy(p, model));
    if (provider) return { targets: [toTarget(provider, model)], labels };
  }
  throw new GatewayError('MODEL_NOT_FOUND', `The model '${model}' does not exist or you do not have access to it.`);
}

/**
 * The model ids a workspace can call, for `GET /v1/models`: its aliases, then every exact model
 * name its providers serve and, for providers with `*` patterns, the names they answered when asked
 * (`listed`, already filtered by their patterns: src/gateway/model-listing.ts), that it may call.
 */
export function listModels(
  routing: WorkspaceRouting,
  platform: readonly RoutableProvider[],
  listed: ReadonlyMap<RoutableProvider, readonly string[]> = new Map(),
): { id: string; ownedBy: string }[] {
  const out = new Map<string, string>();
  for (const alias of routing.settings.aliases) out.set(alias.name, 'gatehouse');
  const allowed = routing.settings.allowedModels;
  for (const provider of [...routing.providers, ...platform]) {
    const exact = provider.models.filter((m) => !m.includes('*'));
    for (const model of [...exact, ...(listed.get(provider) ?? [])]) {
      if (out.has(model)) continue;
      if (allowed === null || allowed.some((pattern) => matchesModelPattern(pattern, model))) out.set(model, provider.name);
    }
  }
  return [...out].map(([id, ownedBy]) => ({ id, ownedBy }));
}

/**
 * The platform's providers with their keys from config (a provider without a key is sent none,
 * which only an `openai-compatible` server without auth accepts).
 */
export function platformProviders(providers: readonly PlatformProviderConfig[], keys: Readonly<Record<string, string>> | undefined): RoutableProvider[] {
  return providers.map((p) => {
    const { models, ...config } = p;
    return { label: `platform:${p.id}`, name: p.id, config: { ...config, id: `platform:${p.id}` }, models, apiKey: keys?.[p.id] ?? '' };
  });
}
