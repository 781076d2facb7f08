/**
 * Encryption of backups and key exports in the age format (age-encryption.org/v1): X25519
 * recipients from the configuration, ChaCha20-Poly1305 in 64 KiB chunks with a last-chunk flag,
 * so a modified or cut file fails authentication. Debian's `age` CLI opens what this writes.
 */
import { readFileSync, statSync } from 'node:fs';
import { Readable } from 'node:stream';
import { Decrypter, Encrypter, identityToRecipient } from 'age-encryption';

/** A web stream of an async iterable (Node's ReadableStream.from, typed through Readable.toWeb). */
const toWeb = (source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> => Readable.toWeb(Readable.from(source)) as unknown as ReadableStream<Uint8Array>;
import { BackupError } from './errors.ts';

/** An X25519 recipient, `age1` + 58 bech32 characters. */
export const RECIPIENT_RE = /^age1[02-9ac-hj-np-z]{58}$/;

/** Encrypts a stream of bytes to every recipient. */
export async function encryptStream(recipients: readonly string[], source: AsyncIterable<Uint8Array>): Promise<ReadableStream<Uint8Array>> {
  if (recipients.length === 0) throw new BackupError('BACKUP_NOT_CONFIGURED', 'no backup recipients are configured (backup.recipients)');
  const e = new Encrypter();
  for (const r of recipients) {
    if (!RECIPIENT_RE.test(r)) throw new BackupError('BACKUP_NOT_CONFIGURED', 'a backup recipient is not an X25519 age recipient (age1...)');
    e.addRecipient(r);
  }
  return e.encrypt(toWeb(source));
}

/** The AGE-SECRET-KEY-1 lines of an age identity file (comments and blank lines skipped). Refuses a file others can read. */
export function readIdentityFile(path: string): string[] {
  let text: string;
  try {
    if (process.platform !== 'win32' && (statSync(path).mode & 0o077) !== 0) {
      throw new BackupError('BACKUP_WRONG_KEY', `the identity file ${path} is readable by group or others; chmod 600 it`);
    }
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (err instanceof BackupError) throw err;
    throw new BackupError('BACKUP_WRONG_KEY', `cannot read the identity file ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const keys = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  if (keys.length === 0 || keys.some((k) => !k.startsWith('AGE-SECRET-KEY-1'))) {
    throw new BackupError('BACKUP_WRONG_KEY', `the identity file ${path} holds no age X25519 identities (AGE-SECRET-KEY-1...)`);
  }
  return keys;
}

/** The recipients of identities, to say which key a backup needs. */
export async function recipientsOf(identities: readonly string[]): Promise<string[]> {
  return Promise.all(identities.map((i) => identityToRecipient(i)));
}

function mapAgeError(err: unknown): BackupError {
  if (err instanceof BackupError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/no identity matched/i.test(message)) return new BackupError('BACKUP_WRONG_KEY', 'none of the identities in backup.identityFile can decrypt this backup', { cause: err });
  if (/invalid tag|mac|stream/i.test(message)) return new BackupError('BACKUP_TAMPERED', 'the encrypted backup failed authentication: it was modified or cut', { cause: err });
  return new BackupError('BACKUP_MALFORMED', `not an age-encrypted backup (${message.slice(0, 80)})`, { cause: err });
}

/**
 * Decrypts a stream. The header is checked before this resolves (wrong key: BACKUP_WRONG_KEY);
 * each chunk is authenticated as it is read (BACKUP_TAMPERED on the first bad one, including a
 * file cut short).
 */
export async function* decryptStream(identities: readonly string[], source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  let plain: ReadableStream<Uint8Array>;
  try {
    plain = await d.decrypt(toWeb(source));
  } catch (err) {
    throw mapAgeError(err);
  }
  const reader = plain.getReader();
  try {
    for (;;) {
      let r: ReadableStreamReadResult<Uint8Array>;
      try {
        r = await reader.read();
      } catch (err) {
        throw mapAgeError(err);
      }
      if (r.done) return;
      yield r.value;
    }
  } finally {
    reader.releaseLock();
  }
}
