/**
 * Webhook endpoints and their secrets (EDGE-6). An endpoint belongs to an org (or the platform),
 * is bound to one provider kind, and names the destination its events are relayed to. Provider
 * secrets are sealed under the org's data key, bound to their row, write-only (never returned),
 * several valid at once during a rotation, each with an optional expiry. Gatehouse's own
 * destination secret (Standard Webhooks, `whsec_…`) is shown once at creation and on rotation.
 * Every change is in the org's audit log, in the same transaction.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { webhookError } from './errors.ts';
import { secretFits, type ProviderKind } from './providers.ts';

export const ENDPOINT_SECRET = { table: 'webhook_endpoints', column: 'destination_secret_sealed' } as const;
export const VERIFY_TOKEN = { table: 'webhook_endpoints', column: 'verify_token_sealed' } as const;
export const PROVIDER_SECRET = { table: 'webhook_secrets', column: 'secret_sealed' } as const;

export interface EndpointView {
  id: string;
  name: string;
  provider: ProviderKind;
  destinationUrl: string | null;
  hasVerifyToken: boolean;
  createdAt: string;
}

export interface SecretView {
  id: string;
  createdAt: string;
  expiresAt: string | null;
  expired: boolean;
}

/** What the verifier needs of an endpoint: opened secrets, newest first. */
export interface EndpointForVerify {
  id: string;
  tenantId: string;
  provider: ProviderKind;
  secrets: string[];
  verifyToken: string | null;
  hasDestination: boolean;
}

interface EndpointRow {
  id: string;
  tenant_id: string;
  name: string;
  provider: ProviderKind;
  destination_url: string | null;
  verify_token_sealed: string | null;
  created_at: Date;
}

const view = (r: EndpointRow): EndpointView => ({
  id: r.id,
  name: r.name,
  provider: r.provider,
  destinationUrl: r.destination_url,
  hasVerifyToken: r.verify_token_sealed !== null,
  createdAt: new Date(r.created_at).toISOString(),
});

/** A new Standard Webhooks secret for signing relays: `whsec_` and 32 random bytes in base64. */
export function newDestinationSecret(): string {
  return `whsec_${randomBytes(32).toString('base64')}`;
}

interface NewEndpoint {
  name: string;
  provider: ProviderKind;
  destinationUrl: string | null;
  verifyToken: string | null;
}

export interface EndpointDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  now: () => number;
  limits: { maxEndpointsPerOrg: number; maxSecretsPerEndpoint: number };
  /** Throws WEBHOOK_DESTINATION_NOT_ALLOWED when the relay may not reach the URL. */
  checkDestination: (url: string) => void;
  /** Called after a change of an endpoint or its secrets committed (evicts it from every node's cache); never throws. */
  onChange?: (tenantId: string, name: string) => Promise<void>;
}

export function createEndpoints(deps: EndpointDeps) {
  const { db, keyring, audit, now, limits } = deps;
  const changed = async (tenantId: string, name: string): Promise<void> => {
    await deps.onChange?.(tenantId, name);
  };

  async function endpointRow(tx: Queryable, name: string, lock = false): Promise<EndpointRow> {
    const { rows } = await tx.query<EndpointRow>(`select id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at from webhook_endpoints where name = $1${lock ? ' for update' : ''}`, [name]);
    const row = rows[0];
    if (!row) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
    return row;
  }

  /**
   * The endpoint read before the transaction, locked: the audit event and sealed values are made
   * before it (they may query the database themselves), so a transaction never waits on a second
   * connection. An endpoint deleted and made again under the same name in between is not the one
   * the event names: refused as not found.
   */
  async function sameEndpoint(tx: Queryable, name: string, id: string): Promise<EndpointRow> {
    const row = await endpointRow(tx, name, true);
    if (row.id !== id) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
    return row;
  }

  return {
    /** Creates an endpoint; the destination secret is returned here once. */
    create: (tenantId: string, input: NewEndpoint): Promise<{ endpoint: EndpointView; destinationSecret: string }> => createEndpoint(deps, tenantId, input),

    async list(tenantId: string): Promise<EndpointView[]> {
      const { rows } = await db.withTenant(tenantId, (tx) => tx.query<EndpointRow>('select id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at from webhook_endpoints order by name'));
      return rows.map(view);
    },

    /** Changes the destination URL and/or the Meta verify token (the provider is fixed at creation). */
    async update(tenantId: string, name: string, changes: EndpointChanges): Promise<EndpointView> {
      const view = await updateEndpoint(deps, tenantId, name, changes);
      await changed(tenantId, name);
      return view;
    },

    /** Deletes an endpoint with its secrets, events and deliveries. */
    async remove(tenantId: string, name: string): Promise<void> {
      const found = await db.withTenant(tenantId, (tx) => endpointRow(tx, name));
      const event = await audit.prepare({ tenantId, action: 'webhook.endpoint.deleted', target: { type: 'webhook_endpoint', id: found.id }, data: { name } });
      await db.withTenant(tenantId, async (tx) => {
        const row = await sameEndpoint(tx, name, found.id);
        await tx.query('delete from webhook_deliveries where event_id in (select id from webhook_events where endpoint_id = $1)', [row.id]);
        await tx.query('delete from webhook_endpoints where id = $1', [row.id]);
        await audit.append(tx, event);
      });
      await changed(tenantId, name);
    },

    /** Adds a provider secret (write-only); the older ones stay valid until they expire or are removed. */
    async addSecret(tenantId: string, name: string, input: { secret: string; expiresAt: Date | null }): Promise<SecretView> {
      const id = randomUUID();
      const at = new Date(now());
      if (input.expiresAt !== null && input.expiresAt.getTime() <= at.getTime()) throw new AppError('VALIDATION_FAILED', 'expiresAt: must be in the future.');
      const sealed = await keyring.seal({ tenantId }, { ...PROVIDER_SECRET, rowId: id }, input.secret);
      const event = await audit.prepare({ tenantId, action: 'webhook.secret.added', target: { type: 'webhook_secret', id }, data: { endpoint: name, expiresAt: input.expiresAt?.toISOString() ?? null } });
      const added = await db.withTenant(tenantId, async (tx) => {
        const row = await endpointRow(tx, name, true);
        if (!secretFits(row.provider, input.secret)) throw webhookError('WEBHOOK_SECRET_INVALID');
        const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from webhook_secrets where endpoint_id = $1 and (expires_at is null or expires_at > $2)', [row.id, at]);
        if ((count[0]?.n ?? 0) >= limits.maxSecretsPerEndpoint) throw webhookError('WEBHOOK_LIMIT_REACHED');
        await tx.query('insert into webhook_secrets (id, tenant_id, endpoint_id, secret_sealed, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)', [id, tenantId, row.id, sealed, input.expiresAt, at]);
        await audit.append(tx, event);
        return { id, createdAt: at.toISOString(), expiresAt: input.expiresAt?.toISOString() ?? null, expired: false };
      });
      await changed(tenantId, name);
      return added;
    },

    async listSecrets(tenantId: string, name: string): Promise<SecretView[]> {
      return db.withTenant(tenantId, async (tx) => {
        const row = await endpointRow(tx, name);
        const { rows } = await tx.query<{ id: string; created_at: Date; expires_at: Date | null }>('select id, created_at, expires_at from webhook_secrets where endpoint_id = $1 order by created_at desc', [row.id]);
        return rows.map((r) => ({ id: r.id, createdAt: new Date(r.created_at).toISOString(), expiresAt: r.expires_at ? new Date(r.expires_at).toISOString() : null, expired: r.expires_at !== null && new Date(r.expires_at).getTime() <= now() }));
      });
    },

    async removeSecret(tenantId: string, name: string, secretId: string): Promise<void> {
      const event = await audit.prepare({ tenantId, action: 'webhook.secret.removed', target: { type: 'webhook_secret', id: secretId }, data: { endpoint: name } });
      await db.withTenant(tenantId, async (tx) => {
        const row = await endpointRow(tx, name, true);
        const removed = await tx.query('delete from webhook_secrets where id = $1 and endpoint_id = $2', [secretId, row.id]);
        if (removed.rowCount === 0) throw webhookError('WEBHOOK_SECRET_NOT_FOUND');
        await audit.append(tx, event);
      });
      await changed(tenantId, name);
    },

    /** A new destination secret (shown once); relays are signed with it from now on. */
    async rotateDestinationSecret(tenantId: string, name: string): Promise<string> {
      const secret = newDestinationSecret();
      const found = await db.withTenant(tenantId, (tx) => endpointRow(tx, name));
      const sealed = await keyring.seal({ tenantId }, { ...ENDPOINT_SECRET, rowId: found.id }, secret);
      const event = await audit.prepare({ tenantId, action: 'webhook.destination_secret.rotated', target: { type: 'webhook_endpoint', id: found.id }, data: { endpoint: name } });
      await db.withTenant(tenantId, async (tx) => {
        const row = await sameEndpoint(tx, name, found.id);
        await tx.query('update webhook_endpoints set destination_secret_sealed = $2, updated_at = $3 where id = $1', [row.id, sealed, new Date(now())]);
        await audit.append(tx, event);
      });
      await changed(tenantId, name);
      return secret;
    },

    /** The endpoint with its unexpired secrets opened and until when they all stay unexpired, or null. For the verifier's cache only. */
    loadForVerify: (tenantId: string, name: string): Promise<{ endpoint: EndpointForVerify; validUntil: number | null } | null> => endpointForVerify(deps, tenantId, name),
  };
}

export type Endpoints = ReturnType<typeof createEndpoints>;

/** Creates an endpoint (one creation at a time per org, within the org's limit); the destination secret is returned here once. */
async function createEndpoint(deps: EndpointDeps, tenantId: string, input: NewEndpoint): Promise<{ endpoint: EndpointView; destinationSecret: string }> {
  const { db, keyring, audit, now, limits } = deps;
  if (input.destinationUrl !== null) deps.checkDestination(input.destinationUrl);
  if (input.verifyToken !== null && input.provider !== 'meta') throw new AppError('VALIDATION_FAILED', 'verifyToken: only Meta endpoints have a verify token.');
  const id = randomUUID();
  const destinationSecret = newDestinationSecret();
  const sealedSecret = await keyring.seal({ tenantId }, { ...ENDPOINT_SECRET, rowId: id }, destinationSecret);
  const sealedToken = input.verifyToken === null ? null : await keyring.seal({ tenantId }, { ...VERIFY_TOKEN, rowId: id }, input.verifyToken);
  const event = await audit.prepare({ tenantId, action: 'webhook.endpoint.created', target: { type: 'webhook_endpoint', id }, data: { name: input.name, provider: input.provider, destination: input.destinationUrl === null ? null : new URL(input.destinationUrl).origin } });
  const at = new Date(now());
  const row = await db.withTenant(tenantId, async (tx) => {
    // One creation at a time per org, so the count below stays true.
    await tx.query('select pg_advisory_xact_lock(hashtext($1))', [`webhook_endpoints:${tenantId}`]);
    const { rows: count } = await tx.query<{ n: number }>('select count(*)::int as n from webhook_endpoints');
    if ((count[0]?.n ?? 0) >= limits.maxEndpointsPerOrg) throw webhookError('WEBHOOK_LIMIT_REACHED');
    const { rows } = await tx.query<EndpointRow>(
      `insert into webhook_endpoints (id, tenant_id, name, provider, destination_url, destination_secret_sealed, verify_token_sealed, created_at, updated_at)
       values ($1, $2, $3, $4, $5, $6, $7, $8, $8) on conflict (tenant_id, name) do nothing
       returning id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at`,
      [id, tenantId, input.name, input.provider, input.destinationUrl, sealedSecret, sealedToken, at],
    );
    if (!rows[0]) throw webhookError('WEBHOOK_ENDPOINT_EXISTS');
    await audit.append(tx, event);
    return rows[0];
  });
  return { endpoint: view(row), destinationSecret };
}

export interface EndpointChanges {
  destinationUrl?: string | null | undefined;
  verifyToken?: string | null | undefined;
}

async function updateEndpoint(deps: EndpointDeps, tenantId: string, name: string, changes: EndpointChanges): Promise<EndpointView> {
  const { db, keyring, audit, now } = deps;
  if (changes.destinationUrl) deps.checkDestination(changes.destinationUrl);
  const select = 'select id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at from webhook_endpoints where name = $1';
  // Sealing and the audit event are made before the transaction (they may query the database themselves).
  const found = (await db.withTenant(tenantId, (tx) => tx.query<EndpointRow>(select, [name]))).rows[0];
  if (!found) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
  if (changes.verifyToken && found.provider !== 'meta') throw new AppError('VALIDATION_FAILED', 'verifyToken: only Meta endpoints have a verify token.');
  const newToken = changes.verifyToken ? await keyring.seal({ tenantId }, { ...VERIFY_TOKEN, rowId: found.id }, changes.verifyToken) : null;
  const url = changes.destinationUrl === undefined ? found.destination_url : changes.destinationUrl;
  const data = { endpoint: name, destination: url === null ? null : new URL(url).origin, verifyTokenChanged: changes.verifyToken !== undefined };
  const event = await audit.prepare({ tenantId, action: 'webhook.endpoint.updated', target: { type: 'webhook_endpoint', id: found.id }, data });
  return db.withTenant(tenantId, async (tx) => {
    const row = (await tx.query<EndpointRow>(`${select} for update`, [name])).rows[0];
    // Deleted, or deleted and made again under the same name, since the read: not the endpoint the event names.
    if (!row || row.id !== found.id) throw webhookError('WEBHOOK_ENDPOINT_NOT_FOUND');
    const token = changes.verifyToken === undefined ? row.verify_token_sealed : newToken;
    const next = changes.destinationUrl === undefined ? row.destination_url : changes.destinationUrl;
    const updated = await tx.query<EndpointRow>(
      'update webhook_endpoints set destination_url = $2, verify_token_sealed = $3, updated_at = $4 where id = $1 returning id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at',
      [row.id, next, token, new Date(now())],
    );
    await audit.append(tx, event);
    return view(updated.rows[0] as EndpointRow);
  });
}

/** The endpoint with its unexpired secrets opened, or null. For the verifier only. */
async function endpointForVerify(deps: EndpointDeps, tenantId: string, name: string): Promise<{ endpoint: EndpointForVerify; validUntil: number | null } | null> {
  const { db, keyring, now } = deps;
  const found = await db.withTenant(tenantId, async (tx) => {
    const { rows } = await tx.query<EndpointRow & { destination_url: string | null }>('select id, tenant_id, name, provider, destination_url, verify_token_sealed, created_at from webhook_endpoints where name = $1', [name]);
    const row = rows[0];
    if (!row) return null;
    const secrets = await tx.query<{ id: string; secret_sealed: string; expires_at: Date | null }>('select id, secret_sealed, expires_at from webhook_secrets where endpoint_id = $1 and (expires_at is null or expires_at > $2) order by created_at desc', [row.id, new Date(now())]);
    return { row, secrets: secrets.rows };
  });
  if (!found) return null;
  const secrets: string[] = [];
  for (const s of found.secrets) secrets.push((await keyring.open({ tenantId }, { ...PROVIDER_SECRET, rowId: s.id }, s.secret_sealed)).toString('utf8'));
  const verifyToken = found.row.verify_token_sealed === null ? null : (await keyring.open({ tenantId }, { ...VERIFY_TOKEN, rowId: found.row.id }, found.row.verify_token_sealed)).toString('utf8');
  const expiries = found.secrets.flatMap((s) => (s.expires_at ? [new Date(s.expires_at).getTime()] : []));
  return { endpoint: { id: found.row.id, tenantId, provider: found.row.provider, secrets, verifyToken, hasDestination: found.row.destination_url !== null }, validUntil: expiries.length > 0 ? Math.min(...expiries) : null };
}

