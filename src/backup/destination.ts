/**
 * Where backups go: a directory (local or mounted) or an S3-compatible bucket. Each backup is two
 * objects, `<id>.age` (the encrypted archive) and `<id>.json` (its outer manifest), and the
 * manifest is written last: a backup without one was cut off and is listed as incomplete, never
 * restored. In a directory the archive is written under a temporary name and renamed, fsynced.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';
import type { Config } from '../config/schema.ts';
import { BackupError } from './errors.ts';
import { BACKUP_ID_RE, outerSchema, parseRecord } from './manifest.ts';
import { createS3Destination } from './destination-s3.ts';
import type { Destination, ListedBackup } from './destination-types.ts';

export type { Destination, ListedBackup } from './destination-types.ts';

export function assertBackupId(id: string): void {
  if (!BACKUP_ID_RE.test(id)) throw new BackupError('BACKUP_NOT_FOUND', `"${id.slice(0, 60)}" is not a backup id (gh-YYYYMMDDTHHMMSSZ-xxxxxxxx)`);
}

function isInside(child: string, parent: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

export function createDirDestination(dir: string): Destination {
  const abs = resolve(dir);
  const archive = (id: string): string => join(abs, `${id}.age`);
  const manifest = (id: string): string => join(abs, `${id}.json`);
  return {
    describe: abs,
    async stagingPath(id) {
      await mkdir(abs, { recursive: true, mode: 0o700 });
      return join(abs, `.${id}.age.partial`);
    },
    async put(id, localFile, outer) {
      try {
        await fsyncPath(localFile);
        await rename(localFile, archive(id));
        const tmp = join(abs, `.${id}.json.partial`);
        const fh = await open(tmp, 'wx', 0o600);
        try {
          await fh.writeFile(JSON.stringify(outer, null, 2) + '\n');
          await fh.sync();
        } finally {
          await fh.close();
        }
        await rename(tmp, manifest(id));
        await fsyncPath(abs);
      } catch (err) {
        await rm(localFile, { force: true });
        await rm(archive(id), { force: true });
        throw new BackupError('BACKUP_WRITE_FAILED', `writing backup ${id} to ${abs} failed (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err });
      }
    },
    async list() {
      let names: string[];
      try {
        names = await readdir(abs);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
        throw err;
      }
      const out: ListedBackup[] = [];
      for (const name of names.sort()) {
        const id = name.replace(/\.age$/, '');
        if (!name.endsWith('.age') || !BACKUP_ID_RE.test(id)) continue;
        const outer = names.includes(`${id}.json`) ? parseRecord(outerSchema, await readFile(manifest(id), 'utf8'), `${id}.json`) : undefined;
        out.push(outer ? { id, outer } : { id });
      }
      return out;
    },
    async open(id) {
      assertBackupId(id);
      const size = await stat(archive(id)).then((s) => s.size, () => undefined);
      let text: string;
      try {
        text = await readFile(manifest(id), 'utf8');
      } catch {
        if (size === undefined) throw new BackupError('BACKUP_NOT_FOUND', `no backup ${id} in ${abs}`);
        throw new BackupError('BACKUP_INCOMPLETE', `backup ${id} has no manifest: it was cut off while written`);
      }
      const outer = parseRecord(outerSchema, text, `${id}.json`);
      if (size === undefined) throw new BackupError('BACKUP_NOT_FOUND', `the archive of backup ${id} is missing from ${abs}`);
      return { outer, bytes: size, read: () => createReadStream(archive(id), { highWaterMark: 1 << 20 }) };
    },
    async remove(id) {
      assertBackupId(id);
      // The manifest first: a half-removed backup then lists as incomplete, never as complete.
      await rm(manifest(id), { force: true });
      await rm(archive(id), { force: true });
    },
  };
}

/** The configured destination; refuses one inside the data directory. */
export function destinationFromConfig(config: Config): Destination {
  const b = config.backup;
  if (b.s3.bucket) return createS3Destination(b.s3 as typeof b.s3 & { bucket: string });
  if (!b.dir) throw new BackupError('BACKUP_NOT_CONFIGURED', 'no backup destination: set backup.dir or backup.s3.bucket');
  const dest = resolve(b.dir);
  const dataDir = resolve(config.storage.dataDir);
  if (isInside(dest, dataDir) || isInside(dataDir, dest)) {
    throw new BackupError('BACKUP_DESTINATION_INSIDE_DATA_DIR', `the backup directory ${dest} overlaps the data directory ${dataDir}; put backups on another disk or mount`);
  }
  return createDirDestination(dest);
}

/** Resolves on 'drain', rejects on 'error', and leaves no listener behind. */
export function drained(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      stream.removeListener('drain', onDrain);
      reject(err);
    };
    const onDrain = (): void => {
      stream.removeListener('error', onError);
      resolve();
    };
    stream.once('drain', onDrain).once('error', onError);
  });
}

/** Writes a stream to a new file (never over an existing one). */
export async function writeStreamToFile(path: string, stream: ReadableStream<Uint8Array>): Promise<void> {
  const out = createWriteStream(path, { flags: 'wx', mode: 0o600 });
  try {
    for await (const chunk of stream) {
      if (!out.write(chunk)) await drained(out);
    }
    await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
  } catch (err) {
    out.destroy();
    await rm(path, { force: true });
    throw new BackupError('BACKUP_WRITE_FAILED', `writing ${path} failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, { cause: err });
  }
}
