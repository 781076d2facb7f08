/**
 * Writes a backup's plaintext tar into a stream that is encrypted as it goes, hashing every file
 * for the manifest. Nothing here touches the disk: the tar only exists encrypted.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';

const SMALL_FILE = 4 * 1024 * 1024;
import type { Writable } from 'node:stream';
import { tarHeader, tarPadding, TAR_END } from './tar.ts';
import type { BackupManifest } from './manifest.ts';

export class ArchiveWriter {
  readonly files: BackupManifest['files'] = [];
  bytes = 0;
  private readonly out: Writable;
  constructor(out: Writable) {
    this.out = out;
  }

  private async write(chunk: Uint8Array): Promise<void> {
    if (chunk.length === 0) return;
    this.bytes += chunk.length;
    if (!this.out.write(chunk)) {
      await new Promise<void>((resolve, reject) => {
        const onError = (err: Error): void => {
          this.out.off('drain', onDrain);
          reject(err);
        };
        const onDrain = (): void => {
          this.out.off('error', onError);
          resolve();
        };
        this.out.once('drain', onDrain).once('error', onError);
      });
    }
  }

  /** A file from memory; `record: false` keeps it out of the manifest's file list (the manifest itself). */
  async addBuffer(name: string, data: Uint8Array, record = true): Promise<void> {
    await this.write(tarHeader({ name, size: data.length, type: 'file', mode: 0o600, mtime: Date.now() }));
    await this.write(data);
    await this.write(tarPadding(data.length));
    if (record) this.files.push({ name, size: data.length, sha256: createHash('sha256').update(data).digest('hex') });
  }

  async addDir(name: string, mtime: number): Promise<void> {
    await this.write(tarHeader({ name, size: 0, type: 'dir', mode: 0o700, mtime }));
  }

  /** A file from disk of the size given (the caller holds it unchanged: PGlite quiesced). */
  async addFile(name: string, path: string, size: number, mtime: number, onBytes?: (n: number) => void): Promise<void> {
    await this.write(tarHeader({ name, size, type: 'file', mode: 0o600, mtime }));
    const hash = createHash('sha256');
    let seen = 0;
    // Most cluster files are a few 8 KiB pages: one read each, no stream per file.
    const source: AsyncIterable<Buffer> | Buffer[] = size <= SMALL_FILE ? [await readFile(path)] : (createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>);
    for await (const chunk of source) {
      seen += chunk.length;
      if (seen > size) throw new Error(`${name} grew while it was read`);
      hash.update(chunk);
      await this.write(chunk);
      onBytes?.(chunk.length);
    }
    if (seen !== size) throw new Error(`${name} shrank while it was read`);
    await this.write(tarPadding(size));
    this.files.push({ name, size, sha256: hash.digest('hex') });
  }

  async end(): Promise<void> {
    await this.write(TAR_END);
    await new Promise<void>((resolve, reject) => this.out.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}
