/** API keys in the database (GW-1): their rows, the view the API shows, and the writes with their audit events. */
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { generateApiKey } from './api-key-format.ts';
import { GatewayError } from './errors.ts';

/** A key as the API shows it: never its secret or hash. */
export interface ApiKeyView {
  id: string;
  workspaceId: string;
  name: string;
  scopes: string[];
  expiresAt: string | null;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
  createdBy: string;
  createdAt: string;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** What a node keeps of a key it verified. */
export interface VerifiedKey {
  id: string;
  tenantId: string;
  workspaceId: string;
  secretHash: string;
  scopes: readonly string[];
  /** ms, or null for no expiry. */
  expiresAt: number | null;
  revoked: boolean;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
}

export interface CreateKeyInput {
  name: string;
  scopes: readonly ApiKeyScope[];
  expiresAt: Date | null;
  monthlyLimit: number | null;
  rateLimitPerMinute: number | null;
}

/** The scopes a key can hold: one per gateway route family, `mcp:tools` for the MCP endpoint (src/mcp), and `budgets:consume` for POST /v1/budgets/consume (the app metering its own files and messages). */
export const API_KEY_SCOPES = ['ai:chat', 'ai:embeddings', 'ai:models', 'mcp:tools', 'budgets:consume', 'tokens:mint'] as const;
export type ApiKeyScope = (typeof API_KEY_SCOPES)[number];
/** The scopes of a key created without naming any: the AI routes only; MCP and budget access are asked for by name. */
export const DEFAULT_API_KEY_SCOPES: readonly ApiKeyScope[] = ['ai:chat', 'ai:embeddings', 'ai:models'];

export interface KeyRow {
  id: string;
  workspace_id: string;
  name: string;
  scopes: string[];
  expires_at: Date | string | null;
  monthly_limit: number | null;
  rate_limit_per_minute: number | null;
  created_by: string;
  created_at: Date | string;
  revoked_at: Date | string | null;
  last_used_at: Date | string | null;
}

export const VIEW_COLUMNS = 'id, workspace_id, name, scopes, expires_at, monthly_limit, rate_limit_per_minute, created_by, created_at, revoked_at, last_used_at';

const toDate = (v: Date | string): Date => (v instanceof Date ? v : new Date(v));
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : toDate(v).toISOString());

/** The per-transaction setting the presented-key RLS policy compares ids with. */
const PRESENTED_KEY_SETTING = 'gatehouse.api_key_id';

/** The key as the API shows it; `pendingLastUsed` is this node's last-used time not yet written. */
export function keyView(r: KeyRow, pendingLastUsed: number | undefined): ApiKeyView {
  const pending = pendingLastUsed;
  const stored = r.last_used_at === null ? undefined : toDate(r.last_used_at).getTime();
  const lastUsed = pending === undefined ? stored : stored === undefined ? pending : Math.max(pending, stored);
  return {
    id: r.id,
    workspaceId: r.workspace_id,
    name: r.name,
    scopes: r.scopes,
    expiresAt: isoOrNull(r.expires_at),
    monthlyLimit: r.monthly_limit,
    rateLimitPerMinute: r.rate_limit_per_minute,
    createdBy: r.created_by,
    createdAt: toDate(r.created_at).toISOString(),
    revokedAt: isoOrNull(r.revoked_at),
    lastUsedAt: lastUsed === undefined ? null : new Date(lastUsed).toISOString(),
  };
}

/** Reads one key by the id in a presented key, through the presented-key policy only. */
export async function readKey(db: Db, id: string): Promise<VerifiedKey | null> {
  const { rows } = await db.transaction(async (tx) => {
    await tx.query('select set_config($1, $2, true)', [PRESENTED_KEY_SETTING, id]);
    return tx.query<{
      id: string;
      tenant_id: string;
      workspace_id: string;
      secret_hash: string;
      scopes: string[];
      expires_at: Date | string | null;
      revoked_at: Date | string | null;
      monthly_limit: number | null;
      rate_limit_per_minute: number | null;
    }>('select id, tenant_id, workspace_id, secret_hash, scopes, expires_at, revoked_at, monthly_limit, rate_limit_per_minute from api_keys where id = $1', [id]);
  });
  const r = rows[0];
  if (!r) return null;
  return {
    id: r.id,
    tenantId: r.tenant_id,
    workspaceId: r.workspace_id,
    secretHash: r.secret_hash,
    scopes: r.scopes,
    expiresAt: r.expires_at === null ? null : toDate(r.expires_at).getTime(),
    revoked: r.revoked_at !== null,
    monthlyLimit: r.monthly_limit,
    rateLimitPerMinute: r.rate_limit_per_minute,
  };
}

/** What the writes read and write through. */
export interface KeyStoreDeps {
  db: Db;
  audit: AuditLog;
  now: () => number;
  maxKeysPerWorkspace: number;
}

/** Inserts a new key (at most `maxKeysPerWorkspace` unrevoked per workspace), audited; returns its plaintext once. */
export async function insertKey(deps: KeyStoreDeps, orgId: string, wsId: string, actorId: string, input: CreateKeyInput): Promise<{ key: string; id: string; row: KeyRow }> {
  const { db, audit, now } = deps;
  const { key, id, secretHash } = generateApiKey();
  const event = await audit.prepare({
    tenantId: orgId,
    action: 'apikey.created',
    target: { type: 'apikey', id },
    data: {
      workspace: wsId,
      scopes: input.scopes.join(' '),
      expiresAt: input.expiresAt?.toISOString() ?? null,
      monthlyLimit: input.monthlyLimit,
      rateLimitPerMinute: input.rateLimitPerMinute,
    },
  });
  const row = await db.withTenant(orgId, async (tx) => {
    // One creation at a time per workspace, so the count below stays true.
    const ws = await tx.query('select id from workspaces where id = $1 for update', [wsId]);
    if (ws.rowCount === 0) throw new AppError('NOT_FOUND');
    const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from api_keys where workspace_id = $1 and revoked_at is null', [wsId]);
    if ((count[0]?.n ?? 0) >= deps.maxKeysPerWorkspace) {
      throw new GatewayError('GATEWAY_LIMIT_REACHED', `A workspace may have at most ${deps.maxKeysPerWorkspace} unrevoked API keys.`);
    }
    const { rows } = await tx.query<KeyRow>(
      `insert into api_keys (id, tenant_id, workspace_id, secret_hash, name, scopes, expires_at, monthly_limit, rate_limit_per_minute, created_by, created_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) returning ${VIEW_COLUMNS}`,
      [id, orgId, wsId, secretHash, input.name, [...input.scopes], input.expiresAt?.toISOString() ?? null, input.monthlyLimit, input.rateLimitPerMinute, actorId, new Date(now()).toISOString()],
    );
    await audit.append(tx, event);
    return rows[0];
  });
  if (!row) throw new Error('insert returned no row');
  return { key, id, row };
}

/** Revokes a key (once; revoking a revoked key changes nothing), audited. Throws NOT_FOUND. */
export async function revokeKey(deps: KeyStoreDeps, orgId: string, wsId: string, keyId: string): Promise<void> {
  const { db, audit, now } = deps;
  const event = await audit.prepare({ tenantId: orgId, action: 'apikey.revoked', target: { type: 'apikey', id: keyId }, data: { workspace: wsId } });
  const found = await db.withTenant(orgId, async (tx) => {
    const { rows } = await tx.query<{ revoked_at: Date | null }>('select revoked_at from api_keys where id = $1 and workspace_id = $2 for update', [keyId, wsId]);
    const row = rows[0];
    if (!row) return false;
    if (row.revoked_at === null) {
      await tx.query('update api_keys set revoked_at = $2 where id = $1', [keyId, new Date(now()).toISOString()]);
      await audit.append(tx, event);
    }
    return true;
  });
  if (!found) throw new AppError('NOT_FOUND');
}
