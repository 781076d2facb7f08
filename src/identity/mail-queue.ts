/**
 * The mail queue (AUTH-2): every mail the product sends goes through it, so no request waits for
 * an SMTP server. A request writes the message to `mail_queue` (in its own transaction where it
 * has one) and answers; a sender on each node claims due rows, delivers them through the
 * transport (SMTP, or the outbox directory without SMTP, see mailer.ts), and retries failures with
 * exponential backoff. Why: the time an SMTP send took was visible in the answer and told whether
 * an address had an account (password reset, sign-up); and mail sent inline was lost when the
 * SMTP server was down or the node stopped.
 *
 * - Sealed: recipient, subject and text (single-use codes) are sealed together under the
 *   platform data key, bound to the row (`mail_queue.body_sealed`, a declared sealed column), and
 *   wiped once sent or given up. Only the kind and a masked recipient stay in clear. Logs name the row id,
 *   kind and error code, never content.
 * - Claiming: one statement takes up to BATCH due rows (`FOR UPDATE SKIP LOCKED` inside an
 *   `UPDATE ... RETURNING`) and leases them for LEASE_MS, so several nodes on PostgreSQL never
 *   take the same row; a node that dies mid-send releases its rows when the lease ends (the message
 *   may then go out twice: delivery is at least once, never silently lost).
 * - Retries: a failed attempt waits mail.retryBaseMs doubled per attempt, capped at
 *   mail.retryMaxMs, with equal jitter (half fixed, half random); after mail.maxAttempts, or at
 *   once on an SMTP 5xx reply or a body that no longer opens, the row is `failed`.
 * - Waking: an enqueue on this node wakes its sender at once; otherwise it polls every
 *   mail.pollMs (sooner when one of its own retries falls due). `close` stops it and waits for the
 *   delivery in progress.
 * - Pruning: sent and failed rows older than mail.retentionDays are deleted, at most once an hour.
 *
 * size-exception: createMailQueue is one factory closure (enqueue, the background sender, retries,
 * retention) of small functions; split by concern is pending (issue 17); no measured reason to
 * keep it whole.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import { PLATFORM_TENANT_ID, type Keyring } from '../keyring/keyring.ts';
import type { SealedColumn } from '../server/route.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { maskAddress, MailerError, validateMessage, type MailMessage, type Mailer } from './mailer.ts';

/** The queue's sealed column, re-encrypted by `gatehouse keys rotate dek`. */
export const MAIL_SEALED_COLUMNS: readonly SealedColumn[] = [{ table: 'mail_queue', column: 'body_sealed', idColumn: 'id', tenantColumn: null }];

/** Rows one pass claims; they are sent concurrently. */
const BATCH = 5;
/** How long a claimed row stays with its sender: well above the transport's worst case (three 10 s SMTP timeouts). */
const LEASE_MS = 5 * 60_000;
const PRUNE_EVERY_MS = 3_600_000;

export interface MailQueueSettings {
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  pollMs: number;
  retentionDays: number;
}

/** A message sealed and ready to be written inside a caller's transaction. */
export interface PreparedMail {
  readonly id: string;
  readonly kind: MailMessage['kind'];
  readonly toMasked: string;
  readonly sealed: string;
}

export interface MailQueueCounts {
  pending: number;
  failed: number;
  sent: number;
}

/**
 * What features mail through. `send` queues a message on its own (and wakes the sender);
 * inside a transaction, `prepare` it before (sealing may use the database), `enqueue` it with the
 * transaction, and `wake` after the commit.
 */
export interface MailQueue extends Mailer {
  prepare(message: MailMessage): Promise<PreparedMail>;
  enqueue(tx: Queryable, prepared: PreparedMail): Promise<void>;
  /** Asks the sender to look for due mail now. */
  wake(): void;
  /**
   * When this node queued mail since the last flush, or is delivering: delivers everything due now
   * and waits for it. Otherwise returns at once (tests call it after every request).
   */
  flush(): Promise<void>;
  counts(): Promise<MailQueueCounts>;
}

interface ClaimedRow {
  id: string;
  kind: string;
  body_sealed: string | null;
  attempts: number;
}

interface SealedBody {
  to: string;
  subject: string;
  text: string;
}

async function countMail(db: Pick<Db, 'query'>): Promise<MailQueueCounts> {
  const r = await db.query<{ status: keyof MailQueueCounts; n: number }>('select status, count(*)::int as n from mail_queue group by status');
  const counts: MailQueueCounts = { pending: 0, failed: 0, sent: 0 };
  for (const row of r.rows) counts[row.status] = row.n;
  return counts;
}

const sealRef = (id: string) => ({ table: 'mail_queue', column: 'body_sealed', rowId: id });

/**
 * The wait before the next attempt after `attempts` failed ones: base * 2^(attempts-1), capped,
 * then equal jitter (between half and all of it), so nodes that failed together do not retry together.
 */
export function retryDelayMs(attempts: number, settings: Pick<MailQueueSettings, 'retryBaseMs' | 'retryMaxMs'>, random: () => number = Math.random): number {
  const exp = Math.min(settings.retryMaxMs, settings.retryBaseMs * 2 ** Math.min(30, Math.max(0, attempts - 1)));
  return Math.round(exp / 2 + random() * (exp / 2));
}

/** An SMTP 5xx reply (mailbox unknown, message refused) will not change by retrying. */
function isPermanent(err: unknown): boolean {
  return err instanceof MailerError && err.responseCode !== undefined && err.responseCode >= 500 && err.responseCode < 600;
}

function errorCodeOf(err: unknown): string {
  if (err instanceof MailerError) return err.responseCode !== undefined ? `${err.code}/${err.responseCode}` : err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'UNKNOWN';
}

export function createMailQueue(deps: { db: Db; keyring: Keyring; transport: Mailer; settings: MailQueueSettings; logger: Logger; now: () => number }): MailQueue {
  const { db, keyring, transport, settings, logger, now } = deps;
  let closed = false;
  let current: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  /** The earliest retry this node scheduled, so the sender wakes for it before the next poll. */
  let nextRetryAt = Infinity;
  let lastPrune = 0;
  /** Messages queued here since the last flush. */
  let unflushed = 0;

  async function prepare(message: MailMessage): Promise<PreparedMail> {
    validateMessage(message);
    const id = randomUUID();
    const body: SealedBody = { to: message.to, subject: message.subject, text: message.text };
    const sealed = await keyring.seal({ tenantId: PLATFORM_TENANT_ID }, sealRef(id), JSON.stringify(body));
    return { id, kind: message.kind, toMasked: maskAddress(message.to), sealed };
  }

  async function enqueue(tx: Queryable, prepared: PreparedMail): Promise<void> {
    unflushed++;
    const t = new Date(now());
    await tx.query(
      'insert into mail_queue (id, kind, to_masked, body_sealed, next_attempt_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $5, $5)',
      [prepared.id, prepared.kind, prepared.toMasked, prepared.sealed, t],
    );
  }

  async function claim(): Promise<ClaimedRow[]> {
    const t = new Date(now());
    const r = await db.query<ClaimedRow>(
      `update mail_queue set locked_until = $2, attempts = attempts + 1, updated_at = $1
        where id in (select id from mail_queue
                      where status = 'pending' and next_attempt_at <= $1 and (locked_until is null or locked_until <= $1)
                      order by next_attempt_at, id limit $3
                      for update skip locked)
        returning id, kind, body_sealed, attempts`,
      [t, new Date(t.getTime() + LEASE_MS), BATCH],
    );
    return r.rows;
  }

  async function openBody(row: ClaimedRow): Promise<SealedBody> {
    if (row.body_sealed === null) throw Object.assign(new Error('no body'), { code: 'BODY_MISSING' });
    const plain = await keyring.open({ tenantId: PLATFORM_TENANT_ID }, sealRef(row.id), row.body_sealed);
    const body = JSON.parse(plain.toString('utf8')) as SealedBody;
    plain.fill(0);
    return body;
  }

  async function deliver(row: ClaimedRow): Promise<void> {
    let body: SealedBody;
    try {
      body = await openBody(row);
    } catch (err) {
      // A destroyed or damaged key will not open later either.
      await giveUp(row, errorCodeOf(err));
      return;
    }
    try {
      await transport.send({ ...body, kind: row.kind as MailMessage['kind'] });
    } catch (err) {
      if (isPermanent(err) || row.attempts >= settings.maxAttempts || err instanceof TypeError) await giveUp(row, errorCodeOf(err));
      else await retryLater(row, errorCodeOf(err));
      return;
    }
    const t = new Date(now());
    await db.query("update mail_queue set status = 'sent', body_sealed = null, sent_at = $2, locked_until = null, last_error = null, updated_at = $2 where id = $1", [row.id, t]);
  }

  async function retryLater(row: ClaimedRow, code: string): Promise<void> {
    const delay = retryDelayMs(row.attempts, settings);
    const at = now() + delay;
    await db.query('update mail_queue set next_attempt_at = $2, locked_until = null, last_error = $3, updated_at = $4 where id = $1', [row.id, new Date(at), code, new Date(now())]);
    nextRetryAt = Math.min(nextRetryAt, at);
    logger.warn({ mail: { id: row.id, kind: row.kind, attempts: row.attempts, code, retryInMs: delay } }, 'mail not sent, will retry');
  }

  async function giveUp(row: ClaimedRow, code: string): Promise<void> {
    await db.query("update mail_queue set status = 'failed', body_sealed = null, locked_until = null, last_error = $2, updated_at = $3 where id = $1", [row.id, code, new Date(now())]);
    logger.error({ mail: { id: row.id, kind: row.kind, attempts: row.attempts, code } }, 'mail given up');
  }

  async function pruneNow(): Promise<void> {
    if (now() - lastPrune < PRUNE_EVERY_MS) return;
    lastPrune = now();
    await db.query("delete from mail_queue where status <> 'pending' and updated_at < $1", [new Date(now() - settings.retentionDays * 86_400_000)]);
  }

  /** One claim and its deliveries; how many rows it took. */
  async function pass(): Promise<number> {
    const rows = await claim();
    await Promise.all(
      rows.map((row) =>
        deliver(row).catch((err: unknown) => {
          // The database failed while recording the outcome: the lease ends and the row is tried again.
          logger.error({ mail: { id: row.id, kind: row.kind, code: errorCodeOf(err) } }, 'mail delivery outcome not recorded');
        }),
      ),
    );
    return rows.length;
  }

  async function drain(): Promise<void> {
    try {
      do {
        again = false;
        if (nextRetryAt <= now()) nextRetryAt = Infinity;
        while (!closed && (await pass()) > 0);
      } while (again && !closed);
      await pruneNow();
    } catch (err) {
      logger.error({ mail: { code: errorCodeOf(err) } }, 'mail queue pass failed');
    }
  }

  function schedule(): void {
    if (closed) return;
    clearTimeout(timer);
    const delay = Math.max(0, Math.min(settings.pollMs, nextRetryAt - now()));
    timer = setTimeout(drainNow, delay);
    timer.unref();
  }

  let wakePending = false;
  /**
   * Wakes the sender on a later turn of the event loop, not inside the caller's request: on PGlite
   * a query runs on this thread, and a claim started here would delay this answer (and only the
   * answers that queued mail).
   */
  function wake(): void {
    if (closed || wakePending) return;
    wakePending = true;
    setImmediate(() => {
      wakePending = false;
      drainNow();
    });
  }

  function drainNow(): void {
    if (closed) return;
    if (current) {
      again = true;
      return;
    }
    current = drain().finally(() => {
      current = undefined;
      schedule();
    });
  }

  // Mail left by an earlier run (or another node) goes out as soon as the node is up.
  drainNow();

  return {
    get transport() {
      return transport.transport;
    },
    async send(message) {
      const prepared = await prepare(message);
      await enqueue(db, prepared);
      wake();
    },
    prepare,
    enqueue,
    wake,
    async flush() {
      if (unflushed === 0 && !current) return;
      unflushed = 0;
      drainNow();
      while (current) await current;
    },
    counts: () => countMail(db),
    async close() {
      closed = true;
      clearTimeout(timer);
      while (current) await current;
      await transport.close();
    },
  };
}

/**
 * `gatehouse_mail_queue_messages{status}` on /metrics: queued, sent (within the retention) and
 * given-up messages, counted at each scrape. An alert on `failed` > 0 tells the operator that
 * mail was lost for good (the node log names each with 'mail given up').
 */
export function registerMailQueueMetrics(registry: Registry, queue: Pick<MailQueue, 'counts'>): void {
  new Gauge({
    name: 'gatehouse_mail_queue_messages',
    help: 'Messages in the mail queue by status: pending (waiting or being retried), sent, failed (given up).',
    labelNames: ['status'],
    registers: [registry],
    async collect() {
      const counts = await queue.counts();
      for (const status of ['pending', 'sent', 'failed'] as const) this.set({ status }, counts[status]);
    },
  });
}

/** The doctor's line: counts from the table, and what to do about given-up messages. */
export async function mailQueueReport(db: Pick<Db, 'query'>): Promise<{ line: string; warning?: string }> {
  const counts = await countMail(db);
  const line = `${counts.pending} pending, ${counts.sent} sent, ${counts.failed} failed`;
  return counts.failed > 0
    ? { line, warning: `${counts.failed} queued mail message(s) were given up (mail.maxAttempts or an SMTP 5xx reply): the node log names each with 'mail given up' and its error code` }
    : { line };
}
