/**
 * Verified events: stored (payload sealed under the org's data key, bound to the row) in the same
 * transaction as their replay record and their relay queue row, so an event is either stored,
 * remembered and queued, or none of these; and two nodes storing the same event id at once store
 * it once (the second insert of the replay row conflicts, the whole transaction is refused).
 * Read back through the API: events, their delivery attempts, and redelivery.
 */
import { randomUUID } from 'node:crypto';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Db } from '../store/db-types.ts';
import { webhookError } from './errors.ts';
import type { EndpointForVerify } from './endpoints.ts';
import type { VerifiedEvent } from './providers.ts';

export const EVENT_PAYLOAD = { table: 'webhook_events', column: 'payload_sealed' } as const;

export interface EventView {
  id: string;
  endpoint: string;
  provider: string;
  eventId: string;
  type: string | null;
  receivedAt: string;
  status: 'pending' | 'delivered' | 'dead' | 'no_destination';
  attempts: number;
  nextAttemptAt: string | null;
  lastError: string | null;
  deliveredAt: string | null;
}

export interface AttemptView {
  attempt: number;
  at: string;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
  node: string;
}

interface EventRow {
  id: string;
  name: string;
  provider: string;
  event_id: string;
  event_type: string | null;
  received_at: Date;
  status: EventView['status'];
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  delivered_at: Date | null;
}

const iso = (d: Date | null): string | null => (d === null ? null : new Date(d).toISOString());

const EVENT_SELECT = `select e.id, p.name, e.provider, e.event_id, e.event_type, e.received_at, d.status, d.attempts, d.next_attempt_at, d.last_error, d.delivered_at
  from webhook_events e join webhook_endpoints p on p.id = e.endpoint_id join webhook_deliveries d on d.event_id = e.id`;

function view(r: EventRow): EventView {
  return {
    id: r.id,
    endpoint: r.name,
    provider: r.provider,
    eventId: r.event_id,
    type: r.event_type,
    receivedAt: new Date(r.received_at).toISOString(),
    status: r.status,
    attempts: r.attempts,
    nextAttemptAt: r.status === 'pending' ? iso(r.next_attempt_at) : null,
    lastError: r.last_error,
    deliveredAt: iso(r.delivered_at),
  };
}

export function createEventStore(deps: { db: Db; keyring: Keyring; audit: AuditLog; now: () => number; replayDays: number }) {
  const { db, keyring, audit, now } = deps;
  return {
    /** Stores a verified event; throws WEBHOOK_REPLAYED when its id was seen for this endpoint. */
    async store(endpoint: EndpointForVerify, verified: VerifiedEvent, raw: Buffer): Promise<{ id: string }> {
      const id = randomUUID();
      const { tenantId } = endpoint;
      const sealed = await keyring.seal({ tenantId }, { ...EVENT_PAYLOAD, rowId: id }, raw);
      const at = new Date(now());
      await db.withTenant(tenantId, async (tx) => {
        const replay = await tx.query(
          'insert into webhook_replays (tenant_id, endpoint_id, event_id, expires_at) values ($1, $2, $3, $4) on conflict (endpoint_id, event_id) do nothing',
          [tenantId, endpoint.id, verified.eventId, new Date(at.getTime() + deps.replayDays * 86_400_000)],
        );
        if (replay.rowCount === 0) throw webhookError('WEBHOOK_REPLAYED');
        const inserted = await tx.query(
          `insert into webhook_events (id, tenant_id, endpoint_id, provider, event_id, event_type, payload_sealed, received_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8) on conflict (endpoint_id, event_id) do nothing`,
          [id, tenantId, endpoint.id, endpoint.provider, verified.eventId, verified.eventType, sealed, at],
        );
        if (inserted.rowCount === 0) throw webhookError('WEBHOOK_REPLAYED');
        await tx.query('insert into webhook_deliveries (event_id, tenant_id, status, next_attempt_at, updated_at) values ($1, $2, $3, $4, $4)', [
          id,
          tenantId,
          endpoint.hasDestination ? 'pending' : 'no_destination',
          at,
        ]);
      });
      return { id };
    },

    async list(tenantId: string, q: { endpoint?: string; status?: string; before?: Date; limit: number }): Promise<EventView[]> {
      const { rows } = await db.withTenant(tenantId, (tx) =>
        tx.query<EventRow>(
          `${EVENT_SELECT} where ($1::text is null or p.name = $1) and ($2::text is null or d.status = $2) and ($3::timestamptz is null or e.received_at < $3)
           order by e.received_at desc limit $4`,
          [q.endpoint ?? null, q.status ?? null, q.before ?? null, q.limit],
        ),
      );
      return rows.map(view);
    },

    async get(tenantId: string, eventId: string): Promise<{ event: EventView; attempts: AttemptView[] }> {
      return db.withTenant(tenantId, async (tx) => {
        const { rows } = await tx.query<EventRow>(`${EVENT_SELECT} where e.id = $1`, [eventId]);
        const row = rows[0];
        if (!row) throw webhookError('WEBHOOK_EVENT_NOT_FOUND');
        const attempts = await tx.query<{ attempt: number; at: Date; status_code: number | null; error: string | null; duration_ms: number; node: string }>(
          'select attempt, at, status_code, error, duration_ms, node from webhook_attempts where event_id = $1 order by attempt, at',
          [eventId],
        );
        return { event: view(row), attempts: attempts.rows.map((a) => ({ attempt: a.attempt, at: new Date(a.at).toISOString(), statusCode: a.status_code, error: a.error, durationMs: a.duration_ms, node: a.node })) };
      });
    },

    /** Queues an event for delivery again now, whatever its state (delivered, dead): a full new round of attempts. */
    async redeliver(tenantId: string, eventId: string): Promise<EventView> {
      const event = await audit.prepare({ tenantId, action: 'webhook.event.redelivered', target: { type: 'webhook_event', id: eventId } });
      return db.withTenant(tenantId, async (tx) => {
        const { rows } = await tx.query<{ destination_url: string | null }>('select p.destination_url from webhook_events e join webhook_endpoints p on p.id = e.endpoint_id where e.id = $1', [eventId]);
        if (!rows[0]) throw webhookError('WEBHOOK_EVENT_NOT_FOUND');
        const status = rows[0].destination_url === null ? 'no_destination' : 'pending';
        await tx.query('update webhook_deliveries set status = $2, attempts = 0, next_attempt_at = $3, locked_until = null, updated_at = $3 where event_id = $1', [eventId, status, new Date(now())]);
        await audit.append(tx, event);
        const again = await tx.query<EventRow>(`${EVENT_SELECT} where e.id = $1`, [eventId]);
        return view(again.rows[0] as EventRow);
      });
    },
  };
}

export type EventStore = ReturnType<typeof createEventStore>;
