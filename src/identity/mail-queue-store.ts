/**
 * The mail queue's rows (AUTH-2, see mail-queue.ts): sealing a message and writing it, claiming
 * due rows under a lease, and recording each delivery's outcome (sent, retried later with backoff,
 * or given up). The background sender that drives these lives in mail-queue.ts.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { PLATFORM_TENANT_ID, type Keyring } from '../keyring/keyring.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { maskAddress, MailerError, validateMessage, type MailMessage, type Mailer } from './mailer.ts';

/** Rows one pass claims; they are sent concurrently. */
const BATCH = 5;
/** How long a claimed row stays with its sender: well above the transport's worst case (three 10 s SMTP timeouts). */
const LEASE_MS = 5 * 60_000;

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

export interface ClaimedRow {
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

export async function countMail(db: Pick<Db, 'query'>): Promise<MailQueueCounts> {
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

export function errorCodeOf(err: unknown): string {
  if (err instanceof MailerError) return err.responseCode !== undefined ? `${err.code}/${err.responseCode}` : err.code;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[A-Z0-9_]{1,40}$/.test(code) ? code : 'UNKNOWN';
}

export interface MailStoreDeps {
  db: Db;
  keyring: Keyring;
  transport: Mailer;
  settings: MailQueueSettings;
  logger: Logger;
  now: () => number;
}

/** Seals a message and writes it (in the caller's transaction where it has one). */
export function createMailWriter(deps: Pick<MailStoreDeps, 'keyring' | 'now'>): { prepare(message: MailMessage): Promise<PreparedMail>; enqueue(tx: Queryable, prepared: PreparedMail): Promise<void> } {
  const { keyring, now } = deps;

  async function prepare(message: MailMessage): Promise<PreparedMail> {
    validateMessage(message);
    const id = randomUUID();
    const body: SealedBody = { to: message.to, subject: message.subject, text: message.text };
    const sealed = await keyring.seal({ tenantId: PLATFORM_TENANT_ID }, sealRef(id), JSON.stringify(body));
    return { id, kind: message.kind, toMasked: maskAddress(message.to), sealed };
  }
  async function enqueue(tx: Queryable, prepared: PreparedMail): Promise<void> {
    const t = new Date(now());
    await tx.query(
      'insert into mail_queue (id, kind, to_masked, body_sealed, next_attempt_at, created_at, updated_at) values ($1, $2, $3, $4, $5, $5, $5)',
      [prepared.id, prepared.kind, prepared.toMasked, prepared.sealed, t],
    );
  }

  return { prepare, enqueue };
}

/**
 * Claims due rows and delivers them, recording each outcome. `onRetry` learns when a retry this
 * node scheduled falls due, so its sender wakes for it before the next poll.
 */
export function createMailDelivery(deps: MailStoreDeps, onRetry: (at: number) => void): { claim(): Promise<ClaimedRow[]>; deliver(row: ClaimedRow): Promise<void> } {
  const { db, keyring, transport, settings, logger, now } = deps;

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
    onRetry(at);
    logger.warn({ mail: { id: row.id, kind: row.kind, attempts: row.attempts, code, retryInMs: delay } }, 'mail not sent, will retry');
  }

  async function giveUp(row: ClaimedRow, code: string): Promise<void> {
    await db.query("update mail_queue set status = 'failed', body_sealed = null, locked_until = null, last_error = $2, updated_at = $3 where id = $1", [row.id, code, new Date(now())]);
    logger.error({ mail: { id: row.id, kind: row.kind, attempts: row.attempts, code } }, 'mail given up');
  }

  return { claim, deliver };
}
