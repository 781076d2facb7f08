/**
 * A workspace's own providers (keys sealed with the org's data key) and model settings in the
 * database: reads, and the writes with their audit events. Cache eviction is the caller's
 * (src/gateway/routing.ts).
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { GatewayError, isGatewayError } from './errors.ts';
import type { ProviderKind } from './providers.ts';
import type { Alias, ModelSettings, RoutableProvider, WorkspaceRouting } from './routing-resolve.ts';
import { assertUpstreamUrlAllowed, type UpstreamPolicy } from './upstream.ts';

/** Most provider credentials one workspace may hold. */
export const MAX_PROVIDERS_PER_WORKSPACE = 20;

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

/** What the store functions read and write through. */
export interface StoreDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  policy: UpstreamPolicy;
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

/** A workspace's routing from the database, its providers' keys opened. */
export async function readRouting(deps: Pick<StoreDeps, 'db' | 'keyring'>, orgId: string, wsId: string): Promise<WorkspaceRouting> {
  const { db, keyring } = deps;
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

export async function listProviders(deps: StoreDeps, orgId: string, wsId: string): Promise<ProviderView[]> {
  const { db } = deps;
  const { rows } = await db.withTenant(orgId, (tx) =>
    tx.query<ProviderRow>('select id, name, kind, base_url, settings, models, api_key_sealed, created_at, updated_at from provider_credentials where workspace_id = $1 order by name', [wsId]),
  );
  return rows.map(providerView);
}

/**
 * Creates or replaces a workspace's provider `name`. The key is sealed before the transaction
 * (bound to a fresh row id) and never returned.
 */
export async function setProvider(deps: StoreDeps, orgId: string, wsId: string, actorId: string, name: string, input: SetProviderInput): Promise<ProviderView> {
  const { db, keyring, audit } = deps;
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
  return providerView(row);
}

/** Deletes a workspace's provider and its sealed key. Throws NOT_FOUND. */
export async function removeProvider(deps: StoreDeps, orgId: string, wsId: string, name: string): Promise<void> {
  const { db, audit } = deps;
  const event = await audit.prepare({ tenantId: orgId, action: 'provider.credential.deleted', target: { type: 'provider', id: name }, data: { workspace: wsId } });
  const deleted = await db.withTenant(orgId, async (tx) => {
    const r = await tx.query('delete from provider_credentials where workspace_id = $1 and name = $2', [wsId, name]);
    if (r.rowCount > 0) await audit.append(tx, event);
    return r.rowCount;
  });
  if (deleted === 0) throw new AppError('NOT_FOUND');
}

export async function getSettings(deps: StoreDeps, orgId: string, wsId: string): Promise<ModelSettings> {
  const { db } = deps;
  const { rows } = await db.withTenant(orgId, (tx) =>
    tx.query<{ allowed_models: string[] | null; aliases: Alias[] }>('select allowed_models, aliases from workspace_model_settings where workspace_id = $1', [wsId]),
  );
  const r = rows[0];
  return r ? { allowedModels: r.allowed_models, aliases: r.aliases } : DEFAULT_SETTINGS;
}

/** Replaces a workspace's allowed models and aliases. */
export async function setSettings(deps: StoreDeps, orgId: string, wsId: string, settings: ModelSettings): Promise<ModelSettings> {
  const { db, audit } = deps;
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
  return settings;
}
