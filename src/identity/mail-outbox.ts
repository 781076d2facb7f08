/**
 * The outbox transport's files (AUTH-2, see mailer.ts): one 0600 JSON file per message in a
 * private directory, written to a temporary name, synced and renamed; listed and read back by
 * `gatehouse outbox`. Ids are checked before any file-system access.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** What a message is for (the only kinds written to or read from the outbox). */
export type MailKind = 'verify-email' | 'password-reset' | 'email-change' | 'account-exists' | 'new-device' | 'lockout' | 'invitation' | 'setup' | 'notice';

export interface OutboxEntry {
  id: string;
  createdAt: string;
  to: string;
  subject: string;
  kind: MailKind;
  text: string;
}

export const KINDS: ReadonlySet<string> = new Set<MailKind>([
  'verify-email',
  'password-reset',
  'email-change',
  'account-exists',
  'new-device',
  'lockout',
  'invitation',
  'setup',
  'notice',
]);

/** Outbox id: `YYYYMMDDTHHMMSSmmmZ-` + 8 lowercase hex digits. Nothing else reaches the file system. */
const OUTBOX_ID = /^\d{8}T\d{9}Z-[0-9a-f]{8}$/;
const OUTBOX_FILE = /^(\d{8}T\d{9}Z-[0-9a-f]{8})\.json$/;

export function outboxId(ms: number): string {
  const iso = new Date(ms).toISOString(); // 2026-11-22T19:30:00.123Z
  return `${iso.replace(/[-:.]/g, '')}-${randomBytes(4).toString('hex')}`;
}

/** Creates the outbox directory (0700) or checks that an existing one is private. */
async function ensureOutboxDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const st = await stat(dir);
  if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
  if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
    throw Object.assign(new Error('outbox directory is readable by other users'), { code: 'EOUTBOXMODE' });
  }
}

export async function writeOutbox(dir: string, entry: OutboxEntry): Promise<void> {
  await ensureOutboxDir(dir);
  const final = join(dir, `${entry.id}.json`);
  const temp = join(dir, `.${entry.id}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    const fh = await open(temp, 'wx', 0o600);
    try {
      await fh.writeFile(JSON.stringify(entry, null, 2) + '\n', 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(temp, final);
  } catch (err) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw err;
  }
}

function toEntry(value: unknown): OutboxEntry | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const v = value as Record<string, unknown>;
  if (
    typeof v.id !== 'string' ||
    !OUTBOX_ID.test(v.id) ||
    typeof v.createdAt !== 'string' ||
    typeof v.to !== 'string' ||
    typeof v.subject !== 'string' ||
    typeof v.kind !== 'string' ||
    !KINDS.has(v.kind) ||
    typeof v.text !== 'string'
  ) {
    return undefined;
  }
  return { id: v.id, createdAt: v.createdAt, to: v.to, subject: v.subject, kind: v.kind as MailKind, text: v.text };
}

async function readEntryFile(outboxDir: string, id: string): Promise<OutboxEntry | undefined> {
  const raw = await readFile(join(outboxDir, `${id}.json`), 'utf8');
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return undefined;
  }
  const entry = toEntry(parsed);
  return entry && entry.id === id ? entry : undefined;
}

/**
 * Outbox messages, newest first. A missing directory is an empty outbox; files that are not
 * outbox messages (temporary files, malformed JSON, another name) are skipped.
 */
export async function listOutbox(outboxDir: string): Promise<OutboxEntry[]> {
  let names: string[];
  try {
    names = await readdir(outboxDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const ids = names
    .map((n) => OUTBOX_FILE.exec(n)?.[1])
    .filter((id): id is string => id !== undefined)
    .sort()
    .reverse();
  const entries: OutboxEntry[] = [];
  for (const id of ids) {
    try {
      const entry = await readEntryFile(outboxDir, id);
      if (entry) entries.push(entry);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err; // removed meanwhile
    }
  }
  return entries;
}

/**
 * One outbox message. The id must look like `20261122T193000123Z-1a2b3c4d` (checked before any
 * file-system access, so `../x` never reaches it); an unknown id throws.
 */
export async function readOutbox(outboxDir: string, id: string): Promise<OutboxEntry> {
  if (typeof id !== 'string' || !OUTBOX_ID.test(id)) {
    throw new Error('not an outbox id (expected something like 20261122T193000123Z-1a2b3c4d)');
  }
  let entry: OutboxEntry | undefined;
  try {
    entry = await readEntryFile(outboxDir, id);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`no outbox message ${id} in ${outboxDir}`, { cause: err });
    throw err;
  }
  if (!entry) throw new Error(`outbox message ${id} is malformed`);
  return entry;
}
