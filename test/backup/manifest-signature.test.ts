/**
 * The backup manifest is signed under the key-encryption keys (OPS-1): someone who holds the age
 * identity (the restore key) can decrypt a backup, change it and encrypt it again, but cannot sign
 * the changed manifest, so `backup verify` and `restore` refuse it, naming why. A backup is also
 * refused without a signature, and under another deployment's keys.
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupError, RESTORE_MARKER, createBackup, exportKeks, restoreBackup, verifyBackup, type BackupResult } from '../../src/backup/index.ts';
import { decryptStream, encryptStream } from '../../src/backup/age.ts';
import type { Config } from '../../src/config/schema.ts';
import { createFileKekSource } from '../../src/crypto/kek-source.ts';
import { kekSourceFromConfig } from '../../src/keyring/source.ts';
import { ageKey, backupConfig, seededNode, tempDir, type AgeKey } from './fixture.ts';

let key: AgeKey;
let config: Config;
let backupDir: string;
let keysExport: string;
let backup: BackupResult;
const dirs: string[] = [];

async function collect(stream: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of stream) parts.push(c);
  return Buffer.concat(parts);
}
async function* once(b: Uint8Array): AsyncGenerator<Uint8Array> {
  yield b;
}

const refusal = async (p: Promise<unknown>): Promise<{ code: string; message: string }> => {
  try {
    await p;
    return { code: 'no error', message: '' };
  } catch (err) {
    return err instanceof BackupError ? { code: err.code, message: err.message } : { code: `not a BackupError: ${(err as Error).message}`, message: '' };
  }
};

/** A copy of the backup directory whose archive the holder of the age identity rewrote: `change` edits the plaintext tar in place. */
async function rewritten(label: string, change: (plain: Buffer) => void, outerChange?: (outer: Record<string, unknown>) => void): Promise<Config> {
  const d = tempDir(label);
  dirs.push(d);
  for (const n of readdirSync(backupDir)) writeFileSync(join(d, n), readFileSync(join(backupDir, n)));
  const file = join(d, `${backup.outer.id}.age`);
  const plain = await collect(decryptStream([key.identity], once(readFileSync(file))));
  change(plain);
  const encrypted = await collect(await encryptStream([key.recipient], once(plain)));
  writeFileSync(file, encrypted);
  const outerFile = join(d, `${backup.outer.id}.json`);
  const outer = JSON.parse(readFileSync(outerFile, 'utf8')) as Record<string, unknown>;
  // The attacker keeps the outer manifest consistent with the new file.
  outer.bytes = encrypted.length;
  outer.sha256 = createHash('sha256').update(encrypted).digest('hex');
  outerChange?.(outer);
  writeFileSync(outerFile, JSON.stringify(outer));
  return backupConfig({ dataDir: config.storage.dataDir, backupDir: d, key });
}

/** Changes the manifest's row count of `users` by one digit, same length, inside the tar. */
function bumpUsersCount(plain: Buffer): void {
  const at = plain.lastIndexOf('"users": ');
  if (at < 0) throw new Error('no users count in the manifest');
  const digit = at + '"users": '.length;
  const c = plain[digit] ?? 0x30;
  plain[digit] = c === 0x39 ? 0x38 : c + 1;
}

beforeAll(async () => {
  const base = tempDir('signature');
  dirs.push(base);
  key = await ageKey(base);
  backupDir = join(base, 'backups');
  config = backupConfig({ dataDir: join(base, 'data'), backupDir, key });
  const s = await seededNode(config);
  try {
    backup = await createBackup({ config, db: s.node.db });
  } finally {
    await s.node.close();
  }
  const exported = await exportKeks(kekSourceFromConfig(config), [key.recipient]);
  keysExport = join(base, 'keks.age');
  writeFileSync(keysExport, exported.file, { mode: 0o600 });
}, 300_000);

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('manifest signature', () => {
  it('a backup carries a signature of its manifest under the KEK, and verifies with the configured keys and with the key export', async () => {
    expect(backup.outer.manifestSignature).toMatchObject({ alg: 'HMAC-SHA256', kekVersion: 1 });
    await verifyBackup(config, backup.outer.id);
    const elsewhere = backupConfig({ dataDir: join(tempDir('nokeys'), 'data'), backupDir, key });
    await verifyBackup(elsewhere, backup.outer.id, { keysFile: keysExport });
  });

  it('attack: a manifest changed and re-encrypted by the holder of the recipient key is refused — BACKUP_SIGNATURE_INVALID, by verify and by restore, whose directory stays marked unfinished (no node starts on it)', async () => {
    const tampered = await rewritten('tampered', bumpUsersCount);
    const v = await refusal(verifyBackup(tampered, backup.outer.id));
    expect(v.code).toBe('BACKUP_SIGNATURE_INVALID');
    expect(v.message).toContain('does not match its signature');
    const target = join(tempDir('target'), 'restored');
    const r = await refusal(restoreBackup({ config: tampered, id: backup.outer.id, target: { dataDir: target }, keysFile: keysExport }));
    expect(r.code).toBe('BACKUP_SIGNATURE_INVALID');
    expect(existsSync(join(target, RESTORE_MARKER))).toBe(true);
  });

  it('attack: the signature stripped from the outer manifest is refused — BACKUP_SIGNATURE_INVALID, "not signed"', async () => {
    const stripped = await rewritten('stripped', bumpUsersCount, (outer) => delete outer.manifestSignature);
    const v = await refusal(verifyBackup(stripped, backup.outer.id));
    expect(v).toMatchObject({ code: 'BACKUP_SIGNATURE_INVALID' });
    expect(v.message).toContain('is not signed');
  });

  it('attack: another deployment\'s keys do not verify the signature — BACKUP_SIGNATURE_INVALID', async () => {
    const other = tempDir('other-keys');
    dirs.push(other);
    const otherKeys = join(other, 'keks.age');
    const otherSource = createFileKekSource(join(other, 'master-keys.json'));
    const exported = await exportKeks(otherSource, [key.recipient]);
    writeFileSync(otherKeys, exported.file, { mode: 0o600 });
    const elsewhere = backupConfig({ dataDir: join(tempDir('nokeys2'), 'data'), backupDir, key });
    expect((await refusal(verifyBackup(elsewhere, backup.outer.id, { keysFile: otherKeys }))).code).toBe('BACKUP_SIGNATURE_INVALID');
    // Without any keys at all the check cannot run: refused, never passed.
    expect((await refusal(verifyBackup(elsewhere, backup.outer.id))).code).toBe('BACKUP_KEYS_MISSING');
  });
});
