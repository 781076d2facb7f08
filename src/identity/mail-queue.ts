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
 * - Pruning: sent and failed rows older than mail.retentionDays are deleted by the scheduled job
 *   `mail.prune` (hourly by default; jobs.schedules, history and the cluster-wide lock as for
 *   every job), not by the sender.
 *
 * The rows (sealing, claiming, outcomes) are in mail-queue-store.ts; the sender loop is here.
 */
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';
import type { Keyring } from '../keyring/keyring.ts';
import type { SealedColumn } from '../server/route.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { MailMessage, Mailer } from './mailer.ts';
import { countMail, createMailDelivery, createMailWriter, errorCodeOf, type MailQueueCounts, type MailQueueSettings, type PreparedMail } from './mail-queue-store.ts';

export { retryDelayMs } from './mail-queue-store.ts';
export type { MailQueueCounts, MailQueueSettings, PreparedMail } from './mail-queue-store.ts';

/** The queue's sealed column, re-encrypted by `gatehouse keys rotate dek`. */
export const MAIL_SEALED_COLUMNS: readonly SealedColumn[] = [{ table: 'mail_queue', column: 'body_sealed', idColumn: 'id', tenantColumn: null }];

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

/** Deletes sent and given-up messages older than `retentionDays` (the `mail.prune` job); returns how many. */
export async function pruneMailQueue(db: Db, at: number, retentionDays: number): Promise<number> {
  const r = await db.query("delete from mail_queue where status <> 'pending' and updated_at < $1", [new Date(at - retentionDays * 86_400_000)]);
  return r.rowCount;
}

export function createMailQueue(deps: { db: Db; keyring: Keyring; transport: Mailer; settings: MailQueueSettings; logger: Logger; now: () => number }): MailQueue {
  const { db, transport, settings, logger, now } = deps;
  let closed = false;
  let current: Promise<void> | undefined;
  let again = false;
  let timer: NodeJS.Timeout | undefined;
  /** The earliest retry this node scheduled, so the sender wakes for it before the next poll. */
  let nextRetryAt = Infinity;
  /** Messages queued here since the last flush. */
  let unflushed = 0;
  const writer = createMailWriter(deps);
  const { claim, deliver } = createMailDelivery(deps, (at) => {
    nextRetryAt = Math.min(nextRetryAt, at);
  });

  async function enqueue(tx: Queryable, prepared: PreparedMail): Promise<void> {
    unflushed++;
    await writer.enqueue(tx, prepared);
  }
  const prepare = writer.prepare;

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