/**
 * Outgoing mail (AUTH-2): a real SMTP round trip against a local smtp-server sink (plain and with
 * AUTH), the file outbox (permissions, order, id checks), header-injection refusals, log hygiene
 * (masked recipient, no body, no credentials) and the `gatehouse outbox` command.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, existsSync } from 'node:fs';
import * as fsp from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { SMTPServer } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { runOutbox } from '../../src/cli/outbox.ts';
import { createMailer, isPlainAddress, listOutbox, MailerError, maskAddress, readOutbox, type Mailer, type MailMessage } from '../../src/identity/mailer.ts';

// Pass-through spies on every file-system call the mailer makes, to prove which paths it touches.
vi.mock('node:fs/promises', async (importOriginal) => {
  const actual = await importOriginal<typeof import('node:fs/promises')>();
  return {
    ...actual,
    mkdir: vi.fn(actual.mkdir),
    open: vi.fn(actual.open),
    readdir: vi.fn(actual.readdir),
    readFile: vi.fn(actual.readFile),
    rename: vi.fn(actual.rename),
    rm: vi.fn(actual.rm),
    stat: vi.fn(actual.stat),
  };
});

const FS_SPIES = ['mkdir', 'open', 'readdir', 'readFile', 'rename', 'rm', 'stat'] as const;

function canary(label: string): string {
  return `${label}${randomBytes(8).toString('hex')}`;
}

interface Received {
  mailFrom: string | undefined;
  rcptTo: string[];
  user: unknown;
  raw: string;
}

interface Sink {
  port: number;
  received: Received[];
  connections: () => number;
  close: () => Promise<void>;
}

/** A local SMTP sink on 127.0.0.1, no TLS. With `auth`, AUTH is required and checked. */
async function startSink(auth?: { user: string; pass: string }): Promise<Sink> {
  const received: Received[] = [];
  let connections = 0;
  const server = new SMTPServer({
    authOptional: !auth,
    disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
    allowInsecureAuth: true,
    disableReverseLookup: true,
    logger: false,
    closeTimeout: 1000,
    onConnect(_session, callback) {
      connections += 1;
      callback();
    },
    onAuth(credentials, _session, callback) {
      if (auth && credentials.username === auth.user && credentials.password === auth.pass) {
        callback(null, { user: credentials.username });
      } else {
        callback(new Error('Invalid username or password'));
      }
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          mailFrom: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
          rcptTo: session.envelope.rcptTo.map((r) => r.address),
          user: session.user,
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return { port, received, connections: () => connections, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

function captureLogger() {
  const chunks: string[] = [];
  const logger = pino({ level: 'info' }, { write: (s: string) => void chunks.push(s) });
  return { logger, output: (): string => chunks.join('') };
}

let tmp: string;
let outboxDir: string;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(() => {
  tmp = mkdtempSync(join(tmpdir(), 'gatehouse-mailer-'));
  outboxDir = join(tmp, 'outbox');
});

afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()?.();
  rmSync(tmp, { recursive: true, force: true });
});

async function sink(auth?: { user: string; pass: string }): Promise<Sink> {
  const s = await startSink(auth);
  cleanups.push(s.close);
  return s;
}

function mailer(options: Partial<Parameters<typeof createMailer>[0]> = {}): Mailer {
  const m = createMailer({ from: 'Gatehouse <noreply@gatehouse.example>', outboxDir, ...options });
  cleanups.push(() => m.close());
  return m;
}

const T0 = Date.UTC(2026, 10, 22, 19, 30, 0, 123);

function message(overrides: Partial<MailMessage> = {}): MailMessage {
  return { to: 'alice@example.com', subject: 'Verify your email', text: 'Hello,\nyour code is 123456.\n', kind: 'verify-email', ...overrides };
}

describe('createMailer over SMTP', () => {
  it('delivers sender, recipient, subject and body text to a real SMTP server', async () => {
    const s = await sink();
    const m = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}` });
    expect(m.transport).toBe('smtp');
    const token = canary('tok');
    await m.send(message({ to: 'bob@example.org', subject: 'Reset your password', text: `Use this link: https://gh.example/r/${token}\n`, kind: 'password-reset' }));
    expect(s.received).toHaveLength(1);
    const got = s.received[0]!;
    expect(got.mailFrom).toBe('noreply@gatehouse.example');
    expect(got.rcptTo).toEqual(['bob@example.org']);
    expect(got.raw).toMatch(/^From: Gatehouse <noreply@gatehouse\.example>\r?$/m);
    expect(got.raw).toMatch(/^To: bob@example\.org\r?$/m);
    expect(got.raw).toMatch(/^Subject: Reset your password\r?$/m);
    expect(got.raw).toContain(`Use this link: https://gh.example/r/${token}`);
    expect(got.raw).not.toMatch(/^Bcc:/im);
  });

  it('authenticates with the user and password from the URL (percent-decoded)', async () => {
    const user = 'mailer@gatehouse.example';
    const pass = `p@ss:w/${canary('pw')}`;
    const s = await sink({ user, pass });
    const m = mailer({ smtpUrl: `smtp://${encodeURIComponent(user)}:${encodeURIComponent(pass)}@127.0.0.1:${s.port}` });
    await m.send(message({ text: 'authenticated body\n' }));
    expect(s.received).toHaveLength(1);
    expect(s.received[0]!.user).toBe(user);
    expect(s.received[0]!.rcptTo).toEqual(['alice@example.com']);
    expect(s.received[0]!.raw).toContain('authenticated body');
  });

  it('without credentials, a server that requires AUTH refuses the message', async () => {
    const s = await sink({ user: 'u', pass: 'secret-password' });
    const m = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}` });
    await expect(m.send(message())).rejects.toBeInstanceOf(MailerError);
    expect(s.received).toHaveLength(0);
  });

  it('a wrong password rejects; neither the error nor the log contains the credentials', async () => {
    const user = canary('user');
    const good = canary('good');
    const wrong = canary('wrong');
    const s = await sink({ user, pass: good });
    const { logger, output } = captureLogger();
    const m = mailer({ smtpUrl: `smtp://${user}:${wrong}@127.0.0.1:${s.port}`, logger });
    const err = (await m.send(message()).then(
      () => undefined,
      (e: unknown) => e,
    )) as MailerError;
    expect(err).toBeInstanceOf(MailerError);
    expect(err.transport).toBe('smtp');
    expect(err.code).toBe('EAUTH');
    expect(err.message).toContain('smtp');
    expect(err.message).toContain('EAUTH');
    expect(err.message).toContain(`127.0.0.1:${s.port}`);
    const everything = [err.message, String(err), err.stack ?? '', JSON.stringify(err), JSON.stringify(Object.entries(err)), output()].join('\n');
    expect(everything).not.toContain(wrong);
    expect(everything).not.toContain(user);
    expect(output()).toContain('mail not sent');
    expect(s.received).toHaveLength(0);
  });

  it('an unreachable server rejects with the transport and code, never the credentials', async () => {
    const s = await startSink();
    const port = s.port;
    await s.close();
    const pass = canary('pw');
    const m = mailer({ smtpUrl: `smtp://someone:${pass}@127.0.0.1:${port}` });
    const err = (await m.send(message()).catch((e: unknown) => e)) as MailerError;
    expect(err).toBeInstanceOf(MailerError);
    expect(err.message).toMatch(/^mail not sent \(smtp, E[A-Z]+/);
    expect(err.message).not.toContain(pass);
    expect(err.message).not.toContain('someone');
  });

  it('with ?requireTLS=true, a server without STARTTLS gets nothing', async () => {
    const s = await sink();
    const m = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}?requireTLS=true` });
    await expect(m.send(message())).rejects.toThrow(/^mail not sent \(smtp, /);
    expect(s.received).toHaveLength(0);
    // Same server, requireTLS=false (the default): delivered in clear, as documented.
    const plain = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}?requireTLS=false` });
    await plain.send(message());
    expect(s.received).toHaveLength(1);
  });

  it('refuses malformed SMTP URLs without repeating them', () => {
    const secret = canary('sec');
    const bad = [
      `http://u:${secret}@mail.example.com`,
      `smtp://u:${secret}@mail.example.com:notaport`,
      `smtp://u:${secret}@mail.example.com/path`,
      `smtp://u:${secret}@mail.example.com?requireTLS=yes`,
      `smtp://u:${secret}@mail.example.com?tls.rejectUnauthorized=false`,
      `smtp://u@mail.example.com`,
      `smtp://:${secret}@mail.example.com`,
      `smtp://u:%E0%A4%A${secret}@mail.example.com`, // secret-scan: fake
      `not a url ${secret}`,
    ];
    for (const url of bad) {
      let caught: unknown;
      try {
        createMailer({ smtpUrl: url, from: 'noreply@gatehouse.example', outboxDir });
      } catch (e) {
        caught = e;
      }
      expect(caught, url).toBeInstanceOf(TypeError);
      expect((caught as Error).message).not.toContain(secret);
    }
  });

  it('refuses a from address that is not a plain address or "Name <address>"', () => {
    for (const from of ['', 'no at sign', 'a@x.com\r\nBcc: evil@x.com', 'Evil\r\n <a@x.com>', 'a@x.com, b@x.com', '"Quoted" <a@x.com>']) {
      expect(() => createMailer({ from, outboxDir }), JSON.stringify(from)).toThrow(TypeError);
    }
    expect(createMailer({ from: 'noreply@gatehouse.example', outboxDir }).transport).toBe('outbox');
    expect(createMailer({ from: 'Gatehouse Security <noreply@gatehouse.example>', outboxDir, smtpUrl: '' }).transport).toBe('outbox');
  });
});

describe('createMailer with the outbox', () => {
  it('writes each message as a 0600 JSON file in a 0700 directory, readable by id, newest first', async () => {
    let clock = T0;
    const m = mailer({ now: () => clock });
    expect(m.transport).toBe('outbox');
    await m.send(message({ subject: 'first', kind: 'verify-email' }));
    clock += 1500;
    await m.send(message({ subject: 'second', kind: 'new-device', to: 'carol@example.net' }));
    clock += 60_000;
    await m.send(message({ subject: 'third', kind: 'lockout' }));

    expect(statSync(outboxDir).mode & 0o777).toBe(0o700);
    const files = readdirSync(outboxDir).sort();
    expect(files).toHaveLength(3);
    for (const f of files) {
      expect(f).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}\.json$/);
      expect(statSync(join(outboxDir, f)).mode & 0o777).toBe(0o600);
    }
    expect(files[0]).toMatch(/^20261122T193000123Z-[0-9a-f]{8}\.json$/);
    const stored = JSON.parse(readFileSync(join(outboxDir, files[0]!), 'utf8')) as Record<string, unknown>;
    expect(stored).toMatchObject({ to: 'alice@example.com', subject: 'first', kind: 'verify-email', createdAt: '2026-11-22T19:30:00.123Z' });

    const list = await listOutbox(outboxDir);
    expect(list.map((e) => e.subject)).toEqual(['third', 'second', 'first']);
    expect(list[1]).toMatchObject({ to: 'carol@example.net', kind: 'new-device', createdAt: '2026-11-22T19:30:01.623Z' });

    const one = await readOutbox(outboxDir, list[1]!.id);
    expect(one).toEqual(list[1]);
    expect(one.text).toBe('Hello,\nyour code is 123456.\n');
  });

  it('an empty or missing outbox lists nothing; stray and malformed files are skipped', async () => {
    expect(await listOutbox(outboxDir)).toEqual([]);
    mkdirSync(outboxDir, { mode: 0o700 });
    writeFileSync(join(outboxDir, '20260101T000000000Z-deadbeef.json'), 'not json');
    writeFileSync(join(outboxDir, '.20260101T000000000Z-cafebabe.1234abcd.tmp'), '{');
    writeFileSync(join(outboxDir, 'notes.txt'), 'x');
    expect(await listOutbox(outboxDir)).toEqual([]);
    await expect(readOutbox(outboxDir, '20260101T000000000Z-deadbeef')).rejects.toThrow(/malformed/);
  });

  it('readOutbox refuses ids that are not outbox ids before touching the file system', async () => {
    const m = mailer({ now: () => T0 });
    await m.send(message());
    // A file outside the outbox that a traversal would reach.
    writeFileSync(join(tmp, 'secret.json'), JSON.stringify({ stolen: true }));
    const fs = vi.mocked(fsp);
    for (const name of FS_SPIES) fs[name].mockClear();
    for (const id of ['../../etc/passwd', '../x', '../secret', '/etc/passwd', '20261122T193000123Z-aaaaaaaa/../../secret', '20261122T193000123Z-AAAAAAAA', '', '..']) {
      await expect(readOutbox(outboxDir, id), id).rejects.toThrow(/not an outbox id/);
    }
    for (const name of FS_SPIES) expect(fs[name], name).not.toHaveBeenCalled();
    await expect(readOutbox(outboxDir, '20261122T193000123Z-00000000')).rejects.toThrow(/no outbox message 20261122T193000123Z-00000000/);
  });

  it('refuses to write into an existing directory that other users can read', async () => {
    mkdirSync(outboxDir);
    chmodSync(outboxDir, 0o755);
    const m = mailer();
    await expect(m.send(message())).rejects.toThrow(/^mail not sent \(outbox, EOUTBOXMODE\)/);
    expect(readdirSync(outboxDir)).toEqual([]);
  });

  it('refuses to send after close', async () => {
    const m = createMailer({ from: 'noreply@gatehouse.example', outboxDir });
    await m.close();
    await expect(m.send(message())).rejects.toThrow(/closed/);
    expect(existsSync(outboxDir)).toBe(false);
  });
});

describe('header injection', () => {
  const badTo = [
    'a@x.com\r\nBcc: evil@x.com',
    'a@x.com\nBcc: evil@x.com',
    'a@x.com\r',
    'a@x.com, evil@x.com',
    'a@x.com;evil@x.com',
    'Alice <a@x.com>',
    '<a@x.com>',
    'a b@x.com',
    ' a@x.com',
    'a@@x.com',
    'a@b@x.com',
    '"a"@x.com',
    'a@x.com\u0000',
    'a@',
    '@x.com',
    'a..b@x.com',
    'a@-x.com',
    'ä@x.com',
    '',
  ];
  const badSubject = ['Hello\nBcc: evil@x.com', 'Hi\r\nX-Injected: yes', 'Hi\rthere', 'tab\tok? no\u0007bell', ''];

  it('refuses them over SMTP: TypeError, and the server sees no connection', async () => {
    const s = await sink();
    const m = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}` });
    for (const to of badTo) await expect(m.send(message({ to })), JSON.stringify(to)).rejects.toBeInstanceOf(TypeError);
    for (const subject of badSubject) await expect(m.send(message({ subject })), JSON.stringify(subject)).rejects.toBeInstanceOf(TypeError);
    await expect(m.send(message({ kind: 'bogus' as MailMessage['kind'] }))).rejects.toBeInstanceOf(TypeError);
    expect(s.connections()).toBe(0);
    expect(s.received).toHaveLength(0);
  });

  it('refuses them with the outbox: TypeError, and nothing is written', async () => {
    const m = mailer();
    for (const to of badTo) await expect(m.send(message({ to })), JSON.stringify(to)).rejects.toBeInstanceOf(TypeError);
    for (const subject of badSubject) await expect(m.send(message({ subject })), JSON.stringify(subject)).rejects.toBeInstanceOf(TypeError);
    expect(existsSync(outboxDir)).toBe(false);
  });

  it('accepts ordinary addresses and subjects', () => {
    for (const a of ['alice@example.com', 'a.b+tag@sub.example.co', "o'brien@example.ie", 'x_y-z@localhost', 'A1@EXAMPLE.COM']) {
      expect(isPlainAddress(a), a).toBe(true);
    }
    for (const a of badTo) expect(isPlainAddress(a), JSON.stringify(a)).toBe(false);
  });
});

describe('logging', () => {
  it('logs kind, transport and the masked recipient; never the body, subject or full address', async () => {
    const token = canary('reset');
    const s = await sink();
    const { logger, output } = captureLogger();
    const viaSmtp = mailer({ smtpUrl: `smtp://127.0.0.1:${s.port}`, logger });
    const viaOutbox = mailer({ logger });
    const subject = canary('subj');
    await viaSmtp.send(message({ to: 'alice@example.com', subject, text: `reset: ${token}\n`, kind: 'password-reset' }));
    await viaOutbox.send(message({ to: 'alice@example.com', subject, text: `reset: ${token}\n`, kind: 'password-reset' }));
    expect(s.received[0]!.raw).toContain(token); // the token was really in the body
    const lines = output()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string; mail: Record<string, unknown> });
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ msg: 'mail sent', mail: { kind: 'password-reset', transport: 'smtp', to: 'a***@example.com' } });
    expect(lines[1]).toMatchObject({ msg: 'mail sent', mail: { kind: 'password-reset', transport: 'outbox', to: 'a***@example.com' } });
    expect(lines[1]!.mail.outboxId).toMatch(/^\d{8}T\d{9}Z-[0-9a-f]{8}$/);
    expect(output()).not.toContain(token);
    expect(output()).not.toContain(subject);
    expect(output()).not.toContain('alice@example.com');
  });

  it('maskAddress keeps the first character and the domain', () => {
    expect(maskAddress('alice@example.com')).toBe('a***@example.com');
    expect(maskAddress('b@x.org')).toBe('b***@x.org');
    expect(maskAddress('not an address')).toBe('***');
  });
});

describe('runOutbox', () => {
  it('prints "outbox is empty" for a missing or empty outbox', async () => {
    const lines: string[] = [];
    await runOutbox(outboxDir, {}, (l) => lines.push(l));
    expect(lines).toEqual([`outbox is empty (${outboxDir})`]);
  });

  it('prints a table, newest first, and one whole message with control characters escaped', async () => {
    let clock = T0;
    const m = mailer({ now: () => clock });
    await m.send(message({ to: 'alice@example.com', subject: 'Verify your email', kind: 'verify-email' }));
    clock += 1000;
    await m.send(message({ to: 'bob@example.org', subject: 'New sign-in', kind: 'new-device', text: 'Line one\n\u001b[31mred\u001b[0m\nend' }));
    const [newest, oldest] = await listOutbox(outboxDir);

    const table: string[] = [];
    await runOutbox(outboxDir, {}, (l) => table.push(l));
    expect(table[0]).toMatch(/^ID\s+TIME\s+KIND\s+TO\s+SUBJECT$/);
    expect(table[1]).toMatch(new RegExp(`^${newest!.id}\\s+2026-11-22T19:30:01\\.123Z\\s+new-device\\s+bob@example\\.org\\s+New sign-in$`));
    expect(table[2]).toMatch(new RegExp(`^${oldest!.id}\\s+2026-11-22T19:30:00\\.123Z\\s+verify-email\\s+alice@example\\.com\\s+Verify your email$`));
    expect(table[3]).toBe(`2 messages in ${outboxDir}`);

    const shown: string[] = [];
    await runOutbox(outboxDir, { id: newest!.id }, (l) => shown.push(l));
    expect(shown).toEqual([
      `Id: ${newest!.id}`,
      'Date: 2026-11-22T19:30:01.123Z',
      'Kind: new-device',
      'To: bob@example.org',
      'Subject: New sign-in',
      '',
      'Line one',
      '\\x1b[31mred\\x1b[0m',
      'end',
    ]);
    expect(shown.join('\n')).not.toContain('\u001b');
  });

  it('rejects an unknown or malformed id', async () => {
    await expect(runOutbox(outboxDir, { id: '20261122T193000123Z-00000000' }, () => undefined)).rejects.toThrow(/no outbox message/);
    await expect(runOutbox(outboxDir, { id: '../../etc/passwd' }, () => undefined)).rejects.toThrow(/not an outbox id/);
  });
});
