/**
 * The relay (EDGE-6): delivers stored events to their org's destination URL, signed with Standard
 * Webhooks under the endpoint's own destination secret, with exponential backoff and a dead
 * letter after `webhooks.relay.maxAttempts`.
 *
 * At-least-once: a delivery is marked delivered only after the destination answered 2xx, so a
 * node that dies between the answer and the mark delivers it again (the `webhook-id` header stays
 * the event's id on every attempt, for the receiver to deduplicate). No ordering is promised:
 * retries of an older event may arrive after a newer event.
 *
 * Any node delivers any org's events: it claims due rows of the queue (no payload there) with
 * `for update skip locked` and a lease (`locked_until`), so two nodes never send the same attempt
 * at once and a node that dies mid-attempt leaves a lease that expires. The payload and secret
 * are read in the org's own tenant context. Outbound connections go through the egress check
 * (src/net/egress.ts): allowlisted host and port, public address after DNS.
 */
import { randomInt } from 'node:crypto';
import type { Logger } from 'pino';
import { Counter } from 'prom-client';
import { Webhook } from 'standardwebhooks';
import { Agent, request } from 'undici';
import { compileEgressPolicy, createAddressCheck, createGuardedConnector, effectivePort, EgressRefusedError, refuseEgressTarget, type EgressPolicy, type EgressResolver } from '../net/egress.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Db } from '../store/db-types.ts';
import { ENDPOINT_SECRET } from './endpoints.ts';
import { EVENT_PAYLOAD } from './events.ts';

export interface RelaySettings extends EgressPolicy {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  batchSize: number;
  concurrency: number;
}

const CONFIG_PATH = 'webhooks.relay';

/**
 * The pre-DNS refusal for a destination: the allowlist when one is configured, otherwise any host
 * on its scheme's default port; both refuse IP literals that are not public (unless allowed).
 */
export function destinationRefusal(url: URL, settings: EgressPolicy): EgressRefusedError | null {
  if (settings.allowedHosts.length > 0) return refuseEgressTarget(url.protocol, url.hostname, url.port, compileEgressPolicy(settings, CONFIG_PATH));
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && settings.allowInsecureHttp === true)) return new EgressRefusedError('SCHEME_NOT_ALLOWED');
  if (effectivePort(url.protocol, url.port) !== effectivePort(url.protocol, undefined)) return new EgressRefusedError('PORT_NOT_ALLOWED');
  return refuseEgressTarget(url.protocol, url.hostname, url.port, { hosts: [url.hostname.replace(/^\[|\]$/g, '')], addressAllowed: createAddressCheck(settings.allowedCidrs ?? [], CONFIG_PATH), allowHttp: settings.allowInsecureHttp === true });
}

/** The wait before attempt `attempts + 1`: base × 2^(attempts-1), capped, with jitter between half and all of it. */
export function backoffMs(attempts: number, base: number, max: number): number {
  const full = Math.min(max, base * 2 ** Math.max(0, attempts - 1));
  return Math.floor(full / 2) + randomInt(Math.max(1, Math.ceil(full / 2)));
}

interface Claimed {
  event_id: string;
  tenant_id: string;
  attempts: number;
}

export interface RelayDeps {
  db: Db;
  keyring: Keyring;
  logger: Logger;
  now: () => number;
  settings: RelaySettings;
  nodeId: string;
  resolve?: EgressResolver;
}

type SendResult = { statusCode: number | null; error: string | null };

/** The relay's HTTP client: every connection through the egress check, at connect time too. */
function createRelayAgent(settings: RelaySettings, resolve: EgressResolver | undefined): Agent {
  return new Agent({
    connect: createGuardedConnector({
      refuseTarget: (protocol, hostname, port) => destinationRefusal(new URL(`${protocol}//${hostname.includes(':') ? `[${hostname}]` : hostname}${port ? `:${port}` : ''}`), settings),
      addressAllowed: createAddressCheck(settings.allowedCidrs ?? [], CONFIG_PATH),
      connectTimeoutMs: Math.min(settings.timeoutMs, 5_000),
      ...(resolve ? { resolve } : {}),
    }),
    keepAliveTimeout: 10_000,
    connections: 64,
  });
}

/** Claims up to `limit` due rows of every org's queue with a lease of `leaseMs`. */
async function claimDue(db: Db, at: Date, leaseMs: number, limit: number): Promise<Claimed[]> {
  // The one query that sees every org's queue rows (the relay policy on webhook_deliveries).
  const { rows } = await db.transaction(async (tx) => {
    await tx.query("select set_config('gatehouse.webhook_relay', 'on', true)");
    return tx.query<Claimed>(
    `update webhook_deliveries d set locked_until = $2, updated_at = $1
      where d.event_id in (select event_id from webhook_deliveries where status = 'pending' and next_attempt_at <= $1 and (locked_until is null or locked_until <= $1)
                           order by next_attempt_at limit $3 for update skip locked)
      returning d.event_id, d.tenant_id, d.attempts`,
      [at, new Date(at.getTime() + leaseMs), limit],
    );
  });
  return rows;
}

/** One signed POST to the destination; the outcome as a status code or a failure reason. */
async function sendSigned(agent: Agent, settings: RelaySettings, timestamp: Date, url: string, secret: string, eventId: string, body: string): Promise<SendResult> {
  const signature = new Webhook(secret).sign(eventId, timestamp, body);
  try {
    const res = await request(url, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'user-agent': 'Gatehouse-Relay', 'webhook-id': eventId, 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': signature },
      body,
      headersTimeout: settings.timeoutMs,
      bodyTimeout: settings.timeoutMs,
      signal: AbortSignal.timeout(settings.timeoutMs),
    });
    // The answer's body is never kept (it could be anything); it is read to free the connection.
    await res.body.dump({ limit: 64 * 1024 }).catch(() => undefined);
    return res.statusCode >= 200 && res.statusCode < 300 ? { statusCode: res.statusCode, error: null } : { statusCode: res.statusCode, error: `http_${res.statusCode}` };
  } catch (err) {
    const refusal = err instanceof EgressRefusedError ? err : (err as { cause?: unknown }).cause instanceof EgressRefusedError ? ((err as { cause: EgressRefusedError }).cause) : null;
    if (refusal) return { statusCode: null, error: `egress_${refusal.code.toLowerCase()}` };
    const name = (err as Error).name;
    if (name === 'TimeoutError' || name === 'HeadersTimeoutError' || name === 'BodyTimeoutError' || name === 'AbortError') return { statusCode: null, error: 'timeout' };
    return { statusCode: null, error: 'connect' };
  }
}

interface LoadedEvent {
  id: string;
  payload_sealed: string;
  provider: string;
  event_id: string;
  event_type: string | null;
  received_at: Date;
  endpoint_id: string;
  name: string;
  destination_url: string | null;
  destination_secret_sealed: string;
}

/** The event with its endpoint, read in the org's own tenant context. */
async function loadEvent(db: Db, row: Claimed): Promise<LoadedEvent | undefined> {
  return db.withTenant(row.tenant_id, async (tx) => {
    const { rows } = await tx.query<LoadedEvent>(
      `select e.id, e.payload_sealed, e.provider, e.event_id, e.event_type, e.received_at, p.id as endpoint_id, p.name, p.destination_url, p.destination_secret_sealed
         from webhook_events e join webhook_endpoints p on p.id = e.endpoint_id where e.id = $1`,
      [row.event_id],
    );
    return rows[0];
  });
}

/** The relayed body: the event's envelope with the provider's JSON embedded byte for byte. */
function relayBody(loaded: LoadedEvent, raw: string): string {
  return `{"type":${JSON.stringify(loaded.event_type ?? `${loaded.provider}.event`)},"timestamp":${JSON.stringify(new Date(loaded.received_at).toISOString())},"data":{"id":${JSON.stringify(loaded.id)},"endpoint":${JSON.stringify(loaded.name)},"provider":${JSON.stringify(loaded.provider)},"providerEventId":${JSON.stringify(loaded.event_id)},"payload":${raw}}}`;
}

/** Records an attempt and moves the delivery on: delivered, dead, no destination, or the next try after backoff. */
async function recordAttempt(db: Db, settings: RelaySettings, nodeId: string, row: Claimed, attempt: { no: number; at: Date; ms: number; result: SendResult; dead: boolean }): Promise<void> {
  const { no: attemptNo, at, ms, result, dead } = attempt;
  await db.withTenant(row.tenant_id, async (tx) => {
    await tx.query('insert into webhook_attempts (id, tenant_id, event_id, attempt, at, status_code, error, duration_ms, node) values (gen_random_uuid(), $1, $2, $3, $4, $5, $6, $7, $8)', [
      row.tenant_id,
      row.event_id,
      attemptNo,
      at,
      result.statusCode,
      result.error,
      ms,
      nodeId,
    ]);
    if (result.error === null) {
      await tx.query("update webhook_deliveries set status = 'delivered', attempts = $2, delivered_at = $3, locked_until = null, last_error = null, updated_at = $3 where event_id = $1", [row.event_id, attemptNo, at]);
    } else if (dead || result.error === 'no_destination') {
      await tx.query("update webhook_deliveries set status = $4, attempts = $2, locked_until = null, last_error = $3, updated_at = $5 where event_id = $1", [row.event_id, attemptNo, result.error, dead ? 'dead' : 'no_destination', at]);
    } else {
      const next = new Date(at.getTime() + backoffMs(attemptNo, settings.retryBaseMs, settings.retryMaxMs));
      await tx.query('update webhook_deliveries set attempts = $2, next_attempt_at = $3, locked_until = null, last_error = $4, updated_at = $5 where event_id = $1', [row.event_id, attemptNo, next, result.error, at]);
    }
  });
}

export function createRelay(deps: RelayDeps) {
  const { db, keyring, logger, now, settings, nodeId } = deps;
  const agent = createRelayAgent(settings, deps.resolve);
  const delivered = new Counter({ name: 'gatehouse_webhooks_delivered_total', help: 'Events the relay delivered (destination answered 2xx).', registers: [] });
  const failed = new Counter({ name: 'gatehouse_webhooks_delivery_failed_total', help: 'Relay attempts that failed, by reason (http_<status>, timeout, connect, egress_<reason>), and dead letters (reason dead).', labelNames: ['reason'] as const, registers: [] });
  // The lease outlives an attempt's timeout, so a live node never loses a row it is sending.
  const leaseMs = settings.timeoutMs * 2 + 5_000;
  let closed = false;
  let pass: Promise<number> | null = null;

  async function attempt(row: Claimed): Promise<void> {
    const loaded = await loadEvent(db, row);
    if (!loaded) return;
    const attemptNo = row.attempts + 1;
    const started = performance.now();
    let result: SendResult;
    if (loaded.destination_url === null) {
      result = { statusCode: null, error: 'no_destination' };
    } else {
      const raw = (await keyring.open({ tenantId: row.tenant_id }, { ...EVENT_PAYLOAD, rowId: loaded.id }, loaded.payload_sealed)).toString('utf8');
      const secret = (await keyring.open({ tenantId: row.tenant_id }, { ...ENDPOINT_SECRET, rowId: loaded.endpoint_id }, loaded.destination_secret_sealed)).toString('utf8');
      result = await sendSigned(agent, settings, new Date(now()), loaded.destination_url, secret, loaded.id, relayBody(loaded, raw));
    }
    const ms = Math.round(performance.now() - started);
    const ok = result.error === null;
    const dead = !ok && attemptNo >= settings.maxAttempts;
    await recordAttempt(db, settings, nodeId, row, { no: attemptNo, at: new Date(now()), ms, result, dead });
    if (ok) delivered.inc();
    else {
      failed.inc({ reason: result.error ?? 'unknown' });
      if (dead) {
        failed.inc({ reason: 'dead' });
        logger.warn({ event: row.event_id, tenant: row.tenant_id, attempts: attemptNo, reason: result.error }, 'webhook relay dead-lettered an event');
      }
    }
  }

  /** One pass: claims what is due, up to `batchSize`, and attempts each (`concurrency` at once). Returns how many it attempted. */
  async function deliverDue(): Promise<number> {
    if (closed) return 0;
    const rows = await claimDue(db, new Date(now()), leaseMs, settings.batchSize);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < rows.length) {
        const row = rows[next++] as Claimed;
        try {
          await attempt(row);
        } catch (err) {
          // The lease expires and another pass retries it; nothing is lost.
          logger.error({ err, event: row.event_id }, 'webhook relay attempt could not be recorded');
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(settings.concurrency, rows.length) }, worker));
    return rows.length;
  }

  return {
    metrics: [delivered, failed],
    deliverDue,
    /** Passes until nothing is due (bounded by `maxPasses`); returns how many attempts were made. */
    async drain(maxPasses = 20): Promise<number> {
      let total = 0;
      for (let i = 0; i < maxPasses; i++) {
        // A pass started by a kick holds leases on what it claimed: wait for it rather than skip those rows.
        total += (await pass) ?? 0;
        const n = await deliverDue();
        total += n;
        if (n === 0) break;
      }
      return total;
    },
    /** Starts a pass soon unless one is running (after an event was stored); errors are logged. */
    kick(): void {
      if (closed || pass) return;
      pass = deliverDue()
        .catch((err: unknown) => {
          logger.error({ err }, 'webhook relay pass failed');
          return 0;
        })
        .finally(() => {
          pass = null;
        });
    },
    async close(): Promise<void> {
      closed = true;
      await pass?.catch(() => undefined);
      await agent.close();
    },
  };
}

export type Relay = ReturnType<typeof createRelay>;
