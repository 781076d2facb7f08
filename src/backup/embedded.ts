/**
 * The embedded database's side of backups: the PGlite cluster files, copied while PGlite is
 * quiesced after a CHECKPOINT (a consistent cluster, restored by copying the files back). Only the
 * cluster's own entries are taken, by name: master-keys.json (the key-encryption keys), the lock
 * file, the mail outbox and anything else in the data directory stay out of every backup.
 */
import { createHash, type Hash } from 'node:crypto';
import { type WriteStream, createWriteStream } from 'node:fs';
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { ArchiveWriter } from './archive.ts';
import { BackupError } from './errors.ts';
import type { TarEntryHeader } from './tar.ts';

/** Top-level entries of a PostgreSQL cluster directory; postmaster.pid is the running server's, not data. */
const CLUSTER_ENTRY = /^(PG_VERSION|base|global|pg_[a-z_]+|postgresql(\.auto)?\.conf|pg_hba\.conf|pg_ident\.conf)$/;
/** The prefix of the cluster's files inside the archive. */
export const PGDATA_PREFIX = 'pgdata/';
/** Left in the target while a restore runs; a directory holding it is an interrupted restore, cleared by the next one (no node starts on it). */
export { RESTORE_MARKER } from '../store/data-dir.ts';
import { RESTORE_MARKER } from '../store/data-dir.ts';

interface FileItem {
  rel: string;
  path: string;
  size: number;
  mtime: number;
  dir: boolean;
}

async function walk(root: string, rel: string, out: FileItem[]): Promise<void> {
  const entries = await readdir(join(root, rel), { withFileTypes: true });
  for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (!rel && !CLUSTER_ENTRY.test(e.name)) continue;
    const path = join(root, r);
    const s = await stat(path);
    if (e.isDirectory()) {
      out.push({ rel: r, path, size: 0, mtime: s.mtimeMs, dir: true });
      await walk(root, r, out);
    } else if (e.isFile()) {
      out.push({ rel: r, path, size: s.size, mtime: s.mtimeMs, dir: false });
    }
  }
}

/** Adds the cluster's files to the archive (the caller holds PGlite quiesced). */
export async function archiveCluster(dataDir: string, archive: ArchiveWriter, progress?: (done: number, total: number) => void): Promise<number> {
  const items: FileItem[] = [];
  await walk(dataDir, '', items);
  if (!items.some((i) => i.rel === 'PG_VERSION')) throw new Error(`${dataDir} holds no PostgreSQL cluster`);
  const total = items.reduce((n, i) => n + i.size, 0);
  let done = 0;
  progress?.(0, total);
  for (const item of items) {
    if (item.dir) await archive.addDir(PGDATA_PREFIX + item.rel, item.mtime);
    else
      await archive.addFile(PGDATA_PREFIX + item.rel, item.path, item.size, item.mtime, (n) => {
        done += n;
        progress?.(done, total);
      });
  }
  return total;
}

/** Refuses a target that holds anything but an interrupted restore's leftovers (which it clears). */
export async function prepareEmptyDataDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const names = await readdir(dir);
  if (names.includes(RESTORE_MARKER)) {
    for (const n of names) await rm(join(dir, n), { recursive: true, force: true });
  } else if (names.length > 0) {
    throw new BackupError('BACKUP_TARGET_NOT_EMPTY', `the data directory ${dir} is not empty (${names.length} entr${names.length === 1 ? 'y' : 'ies'}); restore into an empty one`);
  }
  await writeFile(join(dir, RESTORE_MARKER), 'a restore into this directory has not finished; run `gatehouse restore` again\n', { mode: 0o600 });
}

export async function finishDataDir(dir: string): Promise<void> {
  await rm(join(dir, RESTORE_MARKER), { force: true });
}

/** Writes the archive's cluster entries into the target directory, hashing each file. */
export function clusterExtractor(dir: string) {
  let out: WriteStream | undefined;
  let hash: Hash | undefined;
  const hashes = new Map<string, string>();
  return {
    hashes,
    async entry(h: TarEntryHeader): Promise<void> {
      const rel = h.name.slice(PGDATA_PREFIX.length);
      const path = join(dir, rel);
      if (h.type === 'dir') {
        await mkdir(path, { recursive: true, mode: 0o700 });
        return;
      }
      await mkdir(dirname(path), { recursive: true, mode: 0o700 });
      out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
      hash = createHash('sha256');
    },
    async data(chunk: Uint8Array): Promise<void> {
      hash?.update(chunk);
      const stream = out;
      if (stream && !stream.write(chunk)) {
        await new Promise<void>((resolve, reject) => {
          const onError = (err: Error): void => {
            stream.off('drain', onDrain);
            reject(err);
          };
          const onDrain = (): void => {
            stream.off('error', onError);
            resolve();
          };
          stream.once('drain', onDrain).once('error', onError);
        });
      }
    },
    async end(h: TarEntryHeader): Promise<void> {
      if (h.type === 'dir') return;
      const stream = out;
      if (stream) await new Promise<void>((r, j) => stream.end((err?: Error | null) => (err ? j(err) : r())));
      hashes.set(h.name, hash?.digest('hex') ?? '');
      out = undefined;
      hash = undefined;
    },
    async abort(): Promise<void> {
      out?.destroy();
    },
  };
}
