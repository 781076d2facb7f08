/**
 * A local SMTP server (smtp-server) on 127.0.0.1 that records what it receives: the mail sink of
 * the mail-queue tests. It can listen on a port chosen earlier (to come up after the node did),
 * delay every DATA (a slow server), and refuse recipients with a 5xx reply.
 */
import { createServer, type AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';

export interface SmtpSink {
  port: number;
  received: { to: string[]; raw: string }[];
  close: () => Promise<void>;
}

/** A TCP port that nothing listens on right now (connections to it are refused until a sink takes it). */
export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

export async function startSmtpSink(options: { port?: number; dataDelayMs?: number; refuse?: (address: string) => boolean } = {}): Promise<SmtpSink> {
  const received: SmtpSink['received'] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS', 'AUTH'],
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 1000,
    onRcptTo(address, _session, callback) {
      if (options.refuse?.(address.address)) callback(Object.assign(new Error('mailbox unavailable'), { responseCode: 550 }));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const done = (): void => {
          received.push({ to: session.envelope.rcptTo.map((r) => r.address), raw: Buffer.concat(chunks).toString('utf8') });
          callback();
        };
        if (options.dataDelayMs) setTimeout(done, options.dataDelayMs);
        else done();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return { port, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

/** Waits (bounded by `tries` checks `everyMs` apart) until `check` is true; false if it never was. */
export async function eventually(check: () => boolean | Promise<boolean>, tries = 600, everyMs = 100): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (await check()) return true;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return false;
}

/**
 * A raw single-part message as a mail client reads it: its headers, then the body with a
 * quoted-printable transfer encoding undone (soft line breaks joined, =XX decoded). A mail with
 * a line longer than 76 characters (a link) is sent quoted-printable.
 */
export function readableMail(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  if (split < 0) return raw;
  const head = raw.slice(0, split);
  const body = raw.slice(split);
  if (!/^Content-Transfer-Encoding:\s*quoted-printable\s*$/im.test(head)) return raw;
  const bytes = body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
  return head + Buffer.from(bytes, 'latin1').toString('utf8');
}
