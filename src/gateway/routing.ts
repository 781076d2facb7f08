/**
 * Where a gateway call goes (GW-2, GW-3): the providers a workspace can use, the models it may
 * call, its aliases with their fallback chains, and the workspace's own vendor keys.
 *
 * Providers come from two places: the platform's (config `gateway.providers`, keys from
 * `gateway.providerKeys`) and a workspace's own (bring your own key, stored here with the key
 * sealed under the org's data key, write-only through the API). Each lists the models it serves.
 *
 * A requested model resolves, for the route's wire format, to:
 * - a workspace alias of that name: its targets in order (the fallback chain), each `{ model,
 *   provider? }` served by the named provider or else the first provider serving that model;
 *   targets no provider of the route's format serves are skipped;
 * - otherwise, if the workspace allows the model (`allowedModels`, null for every model), the first
 *   provider serving it: the workspace's own providers before the platform's.
 * Nothing found is MODEL_NOT_FOUND (404) in the vendor's shape, whether the model does not exist or
 * the workspace may not call it: the answer does not tell which.
 *
 * A workspace's routing (its providers with their opened keys, its settings) is cached per node and
 * evicted on every node through kv pub/sub when it changes.
 *
 * size-exception: createRouting is one factory closure of small functions over shared services;
 * split by concern is pending (issue 17); no measured reason to keep it whole.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { PlatformProviderConfig } from '../config/gateway.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { createTtlCache } from './cache.ts';
import { GatewayError, isGatewayError } from './errors.ts';
import { matchesModelPattern } from './prices.ts';
import { formatOfKind, type ProviderConfig, type ProviderKind } from './providers.ts';
import type { ForwardTarget } from './proxy.ts';
import { assertUpstreamUrlAllowed, type UpstreamPolicy } from './upstream.ts';
import type { WireFormat } from './usage.ts';

/** Most provider credentials one workspace may hold. */
export const MAX_PROVIDERS_PER_WORKSPACE = 20;

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

/** A workspace provider as the API shows it: never its key. */
export interface ProviderView {
  name: string;
  kind: ProviderKind;
  baseUrl: string;
  apiVersion: string | null;
  deployments: Record<string, string> | null;
  streamUsage: boolean | null;
  models: string[];
  /** Always true: a provider is stored only with a key, which is never shown. */
  keySet: true;
  createdAt: string;
  updatedAt: string;
}

export interface SetProviderInput {
  kind: ProviderKind;
  baseUrl: string;
  /** The vendor key; empty only for `openai-compatible` servers that need none. */
  apiKey: string;
  apiVersion?: string | undefined;
  deployments?: Record<string, string> | undefined;
  streamUsage?: boolean | undefined;
  models: string[];
}

export interface WorkspaceRouting {
  providers: RoutableProvider[];
  settings: ModelSettings;
}

interface ProviderRow {
  id: string;
  name: string;
  kind: ProviderKind;
  base_url: string;
  settings: { apiVersion?: string; deployments?: Record<string, string>; streamUsage?: boolean };
  models: string[];
  api_key_sealed: string;
  created_at: Date | string;
  updated_at: Date | string;
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
const SEALED = { table: 'provider_credentials', column: 'api_key_sealed' } as const;
const DEFAULT_SETTINGS: ModelSettings = { allowedModels: null, aliases: [] };

function providerView(r: ProviderRow): ProviderView {
  return {
    name: r.name,
    kind: r.kind,
    baseUrl: r.base_url,
    apiVersion: r.settings.apiVersion ?? null,
    deployments: r.settings.deployments ?? null,
    streamUsage: r.settings.streamUsage ?? null,
    models: r.models,
    keySet: true,
    createdAt: iso(r.created_at),
    updatedAt: iso(r.updated_at),
  };
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

export interface RoutingDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  logger: Logger;
  policy: UpstreamPolicy;
  cacheTtlMs: number;
  /** Whether evictions are reaching this node (the kv subscription is live); the cache is bypassed otherwise. */
  cacheTrusted?: () => boolean;
  /** Announces a changed workspace to every node (this one included). */
  publishEviction: (orgId: string, wsId: string) => Promise<void>;
}

/** Refuses a base URL the upstream policy would refuse at connect time, as a validation error. */
function assertBaseUrlAllowed(baseUrl: string, policy: UpstreamPolicy): void {
  try {
    assertUpstreamUrlAllowed(new URL(baseUrl), policy);
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    const reason =
      err.code === 'UPSTREAM_SCHEME_NOT_ALLOWED'
        ? 'plain http is not allowed here (gateway.upstream.allowInsecureHttp)'
        : err.code === 'UPSTREAM_ADDRESS_NOT_ALLOWED'
          ? 'the address is private or reserved (gateway.upstream.allowedCidrs)'
          : err.code === 'UPSTREAM_PORT_NOT_ALLOWED'
            ? 'the port is not allowed for this host (gateway.upstream.allowedHosts takes host:port entries; 443 without one)'
            : 'the host is not on the gateway\'s allowlist (gateway.upstream.allowedHosts)';
    throw new AppError('VALIDATION_FAILED', `body.baseUrl: ${reason}`);
  }
}

/**
 * Workspaces' own providers and model settings over the database, with this node's cache of each
 * workspace's routing (its providers' keys opened).
 * @example const routing = createRouting({ db, keyring, audit, logger, policy: config.gateway.upstream, cacheTtlMs: 60_000, publishEviction })
 */
export function createRouting(deps: RoutingDeps) {
  const { db, keyring, audit, logger } = deps;
  const cache = createTtlCache<WorkspaceRouting>({ ttlMs: deps.cacheTtlMs, maxEntries: 10_000, ...(deps.cacheTrusted ? { trusted: deps.cacheTrusted } : {}) });
  const cacheKey = (orgId: string, wsId: string): string => `${orgId}/${wsId}`;

  async function evict(orgId: string, wsId: string): Promise<void> {
    cache.delete(cacheKey(orgId, wsId));
    try {
      await deps.publishEviction(orgId, wsId);
    } catch (err) {
      logger.error({ err, orgId, wsId }, 'could not publish a workspace routing eviction');
    }
  }

  async function readRouting(orgId: string, wsId: string): Promise<WorkspaceRouting> {
    const { providers, settings } = await db.withTenant(orgId, async (tx) => ({
      providers: await tx.query<ProviderRow>(
        'select id, name, kind, base_url, settings, models, api_key_sealed, created_at, updated_at from provider_credentials where workspace_id = $1 order by name',
        [wsId],
      ),
      settings: await tx.query<{ allowed_models: string[] | null; aliases: Alias[] }>('select allowed_models, aliases from workspace_model_settings where workspace_id = $1', [wsId]),
    }));
    // Keys are opened outside the transaction: the keyring reads the database itself.
    const routable: RoutableProvider[] = [];
    for (const r of providers.rows) {
      const apiKey = (await keyring.open({ tenantId: orgId }, { ...SEALED, rowId: r.id }, r.api_key_sealed)).toString('utf8');
      routable.push({
        label: `workspace:${r.name}`,
        name: r.name,
        // The breaker is per provider: a workspace's provider never shares one with another's.
        config: { id: `workspace:${wsId}:${r.name}`, kind: r.kind, baseUrl: r.base_url, ...r.settings },
        models: r.models,
        apiKey,
      });
    }
    const s = settings.rows[0];
    return { providers: routable, settings: s ? { allowedModels: s.allowed_models, aliases: s.aliases } : DEFAULT_SETTINGS };
  }

  return {
    /** A workspace's routing, from this node's cache when fresh. */
    load(orgId: string, wsId: string): Promise<WorkspaceRouting> {
      return cache.load(cacheKey(orgId, wsId), () => readRouting(orgId, wsId));
    },

    /** Drops a workspace from this node's cache (an eviction message). */
    dropLocal(orgId: string, wsId: string): void {
      cache.delete(cacheKey(orgId, wsId));
    },

    /** Empties this node's cache (its eviction subscription was down: messages may have been missed). */
    clearLocal(): void {
      cache.clear();
    },

    /** Drops every workspace of an org from this node's cache. */
    dropOrg(orgId: string): void {
      cache.deleteWhere((key) => key.startsWith(`${orgId}/`));
    },

    async listProviders(orgId: string, wsId: string): Promise<ProviderView[]> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<ProviderRow>('select id, name, kind, base_url, settings, models, api_key_sealed, created_at, updated_at from provider_credentials where workspace_id = $1 order by name', [wsId]),
      );
      return rows.map(providerView);
    },

    /**
     * Creates or replaces a workspace's provider `name`. The key is sealed before the transaction
     * (bound to a fresh row id) and never returned.
     */
    async setProvider(orgId: string, wsId: string, actorId: string, name: string, input: SetProviderInput): Promise<ProviderView> {
      assertBaseUrlAllowed(input.baseUrl, deps.policy);
      if (input.apiKey.length === 0 && input.kind !== 'openai-compatible') {
        throw new AppError('VALIDATION_FAILED', 'body.apiKey: required for this kind of provider');
      }
      const rowId = randomUUID();
      const sealed = await keyring.seal({ tenantId: orgId }, { ...SEALED, rowId }, input.apiKey);
      const settings = {
        ...(input.apiVersion !== undefined ? { apiVersion: input.apiVersion } : {}),
        ...(input.deployments !== undefined ? { deployments: input.deployments } : {}),
        ...(input.streamUsage !== undefined ? { streamUsage: input.streamUsage } : {}),
      };
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'provider.credential.set',
        target: { type: 'provider', id: name },
        data: { workspace: wsId, kind: input.kind },
      });
      const row = await db.withTenant(orgId, async (tx) => {
        const ws = await tx.query('select id from workspaces where id = $1 for update', [wsId]);
        if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
        const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from provider_credentials where workspace_id = $1 and name <> $2', [wsId, name]);
        if ((count[0]?.n ?? 0) >= MAX_PROVIDERS_PER_WORKSPACE) {
          throw new GatewayError('GATEWAY_LIMIT_REACHED', `A workspace may have at most ${MAX_PROVIDERS_PER_WORKSPACE} providers.`);
        }
        // A replacement takes the new row id too: the sealed key is bound to it.
        const { rows } = await tx.query<ProviderRow>(
          `insert into provider_credentials (id, tenant_id, workspace_id, name, kind, base_url, settings, models, api_key_sealed, created_by)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
           on conflict (tenant_id, workspace_id, name) do update
             set id = excluded.id, kind = excluded.kind, base_url = excluded.base_url, settings = excluded.settings, models = excluded.models,
                 api_key_sealed = excluded.api_key_sealed, updated_at = now()
           returning id, name, kind, base_url, settings, models, api_key_sealed, created_at, updated_at`,
          [rowId, orgId, wsId, name, input.kind, input.baseUrl, JSON.stringify(settings), input.models, sealed, actorId],
        );
        await audit.append(tx, event);
        return rows[0];
      });
      if (!row) throw new Error('upsert returned no row');
      await evict(orgId, wsId);
      return providerView(row);
    },

    /** Deletes a workspace's provider and its sealed key. Throws NOT_FOUND. */
    async removeProvider(orgId: string, wsId: string, name: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'provider.credential.deleted', target: { type: 'provider', id: name }, data: { workspace: wsId } });
      const deleted = await db.withTenant(orgId, async (tx) => {
        const r = await tx.query('delete from provider_credentials where workspace_id = $1 and name = $2', [wsId, name]);
        if (r.rowCount > 0) await audit.append(tx, event);
        return r.rowCount;
      });
      if (deleted === 0) throw new AppError('NOT_FOUND');
      await evict(orgId, wsId);
    },

    async getSettings(orgId: string, wsId: string): Promise<ModelSettings> {
      const { rows } = await db.withTenant(orgId, (tx) =>
        tx.query<{ allowed_models: string[] | null; aliases: Alias[] }>('select allowed_models, aliases from workspace_model_settings where workspace_id = $1', [wsId]),
      );
      const r = rows[0];
      return r ? { allowedModels: r.allowed_models, aliases: r.aliases } : DEFAULT_SETTINGS;
    },

    /** Replaces a workspace's allowed models and aliases. */
    async setSettings(orgId: string, wsId: string, settings: ModelSettings): Promise<ModelSettings> {
      const event = await audit.prepare({
        tenantId: orgId,
        action: 'limits.changed',
        target: { type: 'workspace', id: wsId },
        data: { setting: 'models', allowedModels: settings.allowedModels === null ? null : settings.allowedModels.length, aliases: settings.aliases.length },
      });
      await db.withTenant(orgId, async (tx) => {
        const ws = await tx.query('select id from workspaces where id = $1', [wsId]);
        if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
        await tx.query(
          `insert into workspace_model_settings (tenant_id, workspace_id, allowed_models, aliases) values ($1, $2, $3, $4)
           on conflict (tenant_id, workspace_id) do update set allowed_models = excluded.allowed_models, aliases = excluded.aliases, updated_at = now()`,
          [orgId, wsId, settings.allowedModels, JSON.stringify(settings.aliases)],
        );
        await audit.append(tx, event);
      });
      await evict(orgId, wsId);
      return settings;
    },
  };
}

export type Routing = ReturnType<typeof createRouting>;
