/**
 * Outgoing mail (AUTH-2): verification, password reset and account notifications.
 *
 * The transports. Features never call them on a request: they queue mail (mail-queue.ts), whose
 * sender delivers each message here, in the background, with retries.
 *
 * Two transports:
 * - `smtp`: when `smtpUrl` is set, messages go out through nodemailer over SMTP, one connection
 *   per message (no pool). URL forms:
 *     smtp://[user:pass@]host[:port][?requireTLS=true]   plain, port 587 by default; STARTTLS is
 *        used when the server offers it, and REQUIRED only with `?requireTLS=true` (then a server
 *        without STARTTLS, or a failed upgrade, makes the send fail instead of going out in clear)
 *     smtps://[user:pass@]host[:port]                    TLS from the first byte, port 465 by default
 *   User and password are percent-decoded (encode `@`, `:`, `/` in them). Server certificates are
 *   verified (Node defaults, TLS 1.2 or newer). The only query parameter accepted is
 *   `requireTLS` (`true`/`false`); anything else is refused, so a typo is not silently ignored.
 *   Connection, greeting, socket-inactivity and DNS timeouts are 10 s each.
 * - `outbox`: without `smtpUrl` (unset or empty), each message is written as one JSON file
 *   `<id>.json` into `outboxDir` (created 0700; an existing directory that group or others can
 *   reach is refused), file mode 0600, written to a hidden temporary name, synced, then renamed,
 *   so a reader never sees half a message. For development and for installations without mail:
 *   an operator reads the messages with `gatehouse outbox`. The files hold one-time tokens in
 *   clear text; nothing prunes them.
 *
 * Outbox ids are `<UTC timestamp to the millisecond>Z-<8 hex>` (`20261122T193000123Z-1a2b3c4d`),
 * so they sort by time; messages written in the same millisecond have no defined order.
 *
 * Header injection: `to` must be a single plain address (see `isPlainAddress`: one `@`, no spaces,
 * commas, semicolons, quotes or angle brackets, ASCII only) and `subject` must not contain control
 * characters (CR and LF included); otherwise `send` throws a TypeError before anything is sent or
 * written. `from` (configuration) is a plain address or `Display Name <address>`.
 *
 * Logging: one line per message, `mail sent` (info) or `mail not sent` (warn), with the kind,
 * the transport, the recipient masked (`a***@example.com`) and, for the outbox, the id. Never the
 * body (it carries one-time tokens), the subject, the full address or the SMTP URL.
 *
 * Failures reject with a `MailerError` whose message names the transport and the error code
 * (nodemailer's `EAUTH`, `ECONNECTION`, `ETIMEDOUT`…, or the file system's `EACCES`…) and, for
 * SMTP, `host:port`, never the credentials. The underlying error is not attached.
 *
 * The outbox files (writing, listing, reading) are in mail-outbox.ts.
 */
import type { Transporter } from 'nodemailer';
import type { Db } from '../store/db-types.ts';
import type { Logger } from 'pino';
import { KINDS, outboxId, writeOutbox, type MailKind, type OutboxEntry } from './mail-outbox.ts';

export { listOutbox, readOutbox, type OutboxEntry } from './mail-outbox.ts';

export interface MailMessage {
  to: string;
  subject: string;
  text: string;
  kind: MailKind;
}

export interface Mailer {
  readonly transport: 'smtp' | 'outbox';
  send(message: MailMessage): Promise<void>;
  close(): Promise<void>;
}

export interface MailerOptions {
  /** smtp:// or smtps:// URL; unset or empty selects the outbox. A secret (it may hold a password). */
  smtpUrl?: string;
  /** Sender: `noreply@example.com` or `Example <noreply@example.com>`. */
  from: string;
  /** Directory for the outbox transport. */
  outboxDir: string;
  logger?: Logger;
  /** Clock for outbox ids, `createdAt` and the Date header (tests). */
  now?: () => number;
}

const SMTP_TIMEOUT_MS = 10_000;
const DEFAULT_SMTP_PORT = 587;
const DEFAULT_SMTPS_PORT = 465;
const MAX_SUBJECT_LENGTH = 998;
const MAX_TEXT_LENGTH = 1024 * 1024;

/** RFC 5322 atext (ASCII) and dots; no spaces, quotes, commas, semicolons, brackets, `@`, backslash. */
const LOCAL_PART = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$/;
/** One DNS label: letters, digits, hyphens (not first or last, checked separately). */
const DOMAIN_LABEL = /^[A-Za-z0-9-]{1,63}$/;
// eslint-disable-next-line no-control-regex -- control characters are exactly what is looked for
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;
/** Characters a display name must not contain (control characters are refused for all of `from`). */
const DISPLAY_NAME_FORBIDDEN = /[<>"\\]/;

export class MailerError extends Error {
  override name = 'MailerError';
  readonly transport: 'smtp' | 'outbox';
  /** nodemailer or file-system error code, `UNKNOWN` when there was none. */
  readonly code: string;
  /** SMTP reply code from the server, when there was one. */
  readonly responseCode: number | undefined;
  constructor(transport: 'smtp' | 'outbox', code: string, responseCode: number | undefined, where: string) {
    super(`mail not sent (${transport}, ${code}${responseCode !== undefined ? `, reply ${responseCode}` : ''})${where ? ` via ${where}` : ''}`);
    this.transport = transport;
    this.code = code;
    this.responseCode = responseCode;
  }
}

/** A single bare address: exactly one `@`, a local part of atext and dots, a DNS domain; at most 254 characters. */
export function isPlainAddress(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > 254) return false;
  const at = value.indexOf('@');
  if (at < 1 || at !== value.lastIndexOf('@')) return false;
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (!LOCAL_PART.test(local) || local.startsWith('.') || local.endsWith('.') || local.includes('..')) return false;
  return isDomain(domain);
}

/** Letters-digits-hyphens labels joined by single dots (a single label is allowed), at most 253 characters. */
function isDomain(domain: string): boolean {
  if (domain.length < 1 || domain.length > 253) return false;
  return domain.split('.').every((label) => DOMAIN_LABEL.test(label) && !label.startsWith('-') && !label.endsWith('-'));
}

/** `alice@example.com` -> `a***@example.com`; anything that is not a plain address -> `***`. */
export function maskAddress(address: string): string {
  if (!isPlainAddress(address)) return '***';
  const at = address.indexOf('@');
  return `${address.slice(0, 1)}***${address.slice(at)}`;
}

/** Throws a TypeError for a message that must not be sent (header injection, unknown kind, sizes). */
export function validateMessage(message: MailMessage): void {
  if (message === null || typeof message !== 'object') throw new TypeError('mail: message must be an object');
  const { to, subject, text, kind } = message;
  if (typeof to !== 'string' || /[\r\n]/.test(to)) throw new TypeError('mail: the recipient must not contain CR or LF');
  if (!isPlainAddress(to)) throw new TypeError('mail: the recipient must be a single plain email address');
  if (typeof subject !== 'string' || /[\r\n]/.test(subject)) throw new TypeError('mail: the subject must not contain CR or LF');
  if (CONTROL_CHARS.test(subject)) throw new TypeError('mail: the subject must not contain control characters');
  if (subject.length === 0 || subject.length > MAX_SUBJECT_LENGTH) throw new TypeError(`mail: the subject must be 1 to ${MAX_SUBJECT_LENGTH} characters`);
  if (typeof text !== 'string' || text.length > MAX_TEXT_LENGTH) throw new TypeError(`mail: the text must be a string of at most ${MAX_TEXT_LENGTH} characters`);
  if (typeof kind !== 'string' || !KINDS.has(kind)) throw new TypeError('mail: unknown message kind');
}

function parseFrom(from: string): { name: string; address: string } | string {
  if (typeof from !== 'string' || CONTROL_CHARS.test(from)) throw new TypeError('mail: from must be a string without control characters');
  if (isPlainAddress(from)) return from;
  const m = /^(.*?) *<([^<>]*)>$/.exec(from);
  const name = m?.[1]?.trim();
  const address = m?.[2];
  if (name && name.length <= 200 && !DISPLAY_NAME_FORBIDDEN.test(name) && address && isPlainAddress(address)) return { name, address };
  throw new TypeError('mail: from must be a plain address or "Display Name <address>"');
}

interface SmtpTarget {
  host: string;
  port: number;
  secure: boolean;
  requireTLS: boolean;
  auth?: { user: string; pass: string };
  /** `smtp://host:port`, for messages: no credentials, no query. */
  display: string;
}

function decodeUserinfo(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    throw new TypeError('mail: smtpUrl has a badly percent-encoded user or password');
  }
}

/** Parses the SMTP URL. Error messages never repeat the URL (it may hold a password). */
export function parseSmtpUrl(smtpUrl: string): SmtpTarget {
  let url: URL;
  try {
    url = new URL(smtpUrl);
  } catch {
    throw new TypeError('mail: smtpUrl is not a valid URL');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new TypeError('mail: smtpUrl must start with smtp:// or smtps://');
  const secure = url.protocol === 'smtps:';
  if (!url.hostname) throw new TypeError('mail: smtpUrl has no host');
  if ((url.pathname && url.pathname !== '/') || url.hash) throw new TypeError('mail: smtpUrl must not have a path or fragment');
  const host = url.hostname.startsWith('[') && url.hostname.endsWith(']') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? DEFAULT_SMTPS_PORT : DEFAULT_SMTP_PORT;
  let requireTLS = false;
  for (const [key, value] of url.searchParams) {
    if (key !== 'requireTLS') throw new TypeError(`mail: smtpUrl has an unsupported parameter (only requireTLS is accepted)`);
    if (value !== 'true' && value !== 'false') throw new TypeError('mail: smtpUrl requireTLS must be true or false');
    requireTLS = value === 'true';
  }
  const user = decodeUserinfo(url.username);
  const pass = decodeUserinfo(url.password);
  if (pass && !user) throw new TypeError('mail: smtpUrl has a password without a user');
  if (user && !pass) throw new TypeError('mail: smtpUrl has a user without a password');
  return {
    host,
    port,
    secure,
    requireTLS,
    ...(user ? { auth: { user, pass } } : {}),
    display: `${url.protocol}//${url.host}`,
  };
}

function errorCode(err: unknown): { code: string; responseCode: number | undefined } {
  const e = (err ?? {}) as { code?: unknown; responseCode?: unknown };
  const code = typeof e.code === 'string' && /^[A-Z0-9_]{1,40}$/.test(e.code) ? e.code : 'UNKNOWN';
  const responseCode = typeof e.responseCode === 'number' && Number.isInteger(e.responseCode) ? e.responseCode : undefined;
  return { code, responseCode };
}

export function createMailer(options: MailerOptions): Mailer {
  const { outboxDir, logger } = options;
  const now = options.now ?? Date.now;
  const from = parseFrom(options.from);
  if (!options.smtpUrl) {
    if (typeof outboxDir !== 'string' || outboxDir.length === 0) throw new TypeError('mail: outboxDir is required without smtpUrl');
  }
  const target = options.smtpUrl ? parseSmtpUrl(options.smtpUrl) : undefined;
  const transport: Mailer['transport'] = target ? 'smtp' : 'outbox';
  // nodemailer (about 5 MB of heap) is loaded with the first message, and only for SMTP.
  let transporter: Promise<Transporter> | undefined;
  const smtpTransport = (smtp: SmtpTarget): Promise<Transporter> =>
    (transporter ??= import('nodemailer').then(({ createTransport }) =>
      createTransport({
        host: smtp.host,
        port: smtp.port,
        secure: smtp.secure,
        requireTLS: smtp.requireTLS,
        ...(smtp.auth ? { auth: smtp.auth } : {}),
        connectionTimeout: SMTP_TIMEOUT_MS,
        greetingTimeout: SMTP_TIMEOUT_MS,
        socketTimeout: SMTP_TIMEOUT_MS,
        dnsTimeout: SMTP_TIMEOUT_MS,
        tls: { minVersion: 'TLSv1.2' },
        logger: false,
        debug: false,
      }),
    ));
  let closed = false;

  async function send(message: MailMessage): Promise<void> {
    validateMessage(message);
    if (closed) throw new Error('mail: the mailer is closed');
    const { to, subject, text, kind } = message;
    const fields = { kind, transport, to: maskAddress(to) };
    const ms = now();
    if (target) {
      try {
        await (await smtpTransport(target)).sendMail({
          from,
          to,
          subject,
          text,
          date: new Date(ms),
          disableFileAccess: true,
          disableUrlAccess: true,
        });
      } catch (err) {
        const { code, responseCode } = errorCode(err);
        logger?.warn({ mail: { ...fields, code, responseCode } }, 'mail not sent');
        throw new MailerError('smtp', code, responseCode, target.display);
      }
      logger?.info({ mail: fields }, 'mail sent');
      return;
    }
    const entry: OutboxEntry = { id: outboxId(ms), createdAt: new Date(ms).toISOString(), to, subject, kind, text };
    try {
      await writeOutbox(outboxDir, entry);
    } catch (err) {
      const { code } = errorCode(err);
      logger?.warn({ mail: { ...fields, code } }, 'mail not sent');
      throw new MailerError('outbox', code, undefined, code === 'EOUTBOXMODE' ? `${outboxDir} (chmod 700 it)` : outboxDir);
    }
    logger?.info({ mail: { ...fields, outboxId: entry.id } }, 'mail sent');
  }

  return {
    transport,
    send,
    async close(): Promise<void> {
      closed = true;
      (await transporter?.catch(() => undefined))?.close();
    },
  };
}

/**
 * A notice to a live account's current address (a factor added or removed, a suspected clone);
 * nothing is sent for a deleted or unknown account.
 */
export async function mailAccountOwner(db: Db, mailer: Mailer, userId: string, subject: string, text: string): Promise<void> {
  const r = await db.query<{ email: string }>("select email from users where id = $1 and status <> 'deleted'", [userId]);
  const email = r.rows[0]?.email;
  if (email) await mailer.send({ to: email, kind: 'notice', subject, text });
}