/**
 * The plain POSIX tar (ustar) inside each backup, so that an operator without Gatehouse can open
 * one with standard tools: `age -d -i key.txt backup.age | tar x`. Only regular files and
 * directories; names up to 255 bytes (ustar prefix + name). Written and read as streams.
 */
import { BackupError } from './errors.ts';

const BLOCK = 512;

export interface TarEntryHeader {
  name: string;
  size: number;
  type: 'file' | 'dir';
  mode: number;
  mtime: number;
}

function writeString(buf: Uint8Array, offset: number, length: number, value: string): void {
  const bytes = Buffer.from(value, 'utf8');
  if (bytes.length > length) throw new Error(`tar field too long: ${value}`);
  buf.set(bytes, offset);
}

function writeOctal(buf: Uint8Array, offset: number, length: number, value: number): void {
  writeString(buf, offset, length, value.toString(8).padStart(length - 1, '0') + '\0');
}

/** One 512-byte ustar header. */
export function tarHeader(entry: TarEntryHeader): Uint8Array {
  const h = new Uint8Array(BLOCK);
  let name = entry.name;
  let prefix = '';
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', name.length - 1);
    prefix = name.slice(0, cut);
    name = name.slice(cut + 1);
    if (cut < 0 || Buffer.byteLength(prefix) > 155 || Buffer.byteLength(name) > 100) throw new Error(`tar name too long: ${entry.name}`);
  }
  writeString(h, 0, 100, name);
  writeOctal(h, 100, 8, entry.mode & 0o7777);
  writeOctal(h, 108, 8, 0);
  writeOctal(h, 116, 8, 0);
  writeOctal(h, 124, 12, entry.type === 'file' ? entry.size : 0);
  writeOctal(h, 136, 12, Math.floor(entry.mtime / 1000));
  h.fill(0x20, 148, 156);
  h[156] = entry.type === 'file' ? 0x30 : 0x35;
  writeString(h, 257, 6, 'ustar\0');
  writeString(h, 263, 2, '00');
  writeString(h, 345, 155, prefix);
  let sum = 0;
  for (const b of h) sum += b;
  writeString(h, 148, 8, sum.toString(8).padStart(6, '0') + '\0 ');
  return h;
}

/** Zero bytes that pad a file of `size` bytes to the block size. */
export function tarPadding(size: number): Uint8Array {
  const rest = size % BLOCK;
  return new Uint8Array(rest === 0 ? 0 : BLOCK - rest);
}

/** The two zero blocks that end an archive. */
export const TAR_END = new Uint8Array(BLOCK * 2);

function readString(buf: Uint8Array, offset: number, length: number): string {
  const slice = buf.subarray(offset, offset + length);
  const end = slice.indexOf(0);
  return Buffer.from(end < 0 ? slice : slice.subarray(0, end)).toString('utf8');
}

function readOctal(buf: Uint8Array, offset: number, length: number): number {
  const text = readString(buf, offset, length).trim();
  if (!/^[0-7]*$/.test(text)) throw new BackupError('BACKUP_MALFORMED', 'the archive has a corrupt tar header');
  return text === '' ? 0 : parseInt(text, 8);
}

function parseHeader(h: Uint8Array): TarEntryHeader | null {
  if (h.every((b) => b === 0)) return null;
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : (h[i] as number);
  if (sum !== readOctal(h, 148, 8)) throw new BackupError('BACKUP_MALFORMED', 'the archive has a tar header with a wrong checksum');
  const flag = h[156];
  if (flag !== 0x30 && flag !== 0 && flag !== 0x35) throw new BackupError('BACKUP_MALFORMED', 'the archive holds an entry that is neither a file nor a directory');
  const prefix = readString(h, 345, 155);
  const base = readString(h, 0, 100);
  const name = prefix ? `${prefix}/${base}` : base;
  if (name.startsWith('/') || name.split('/').includes('..')) throw new BackupError('BACKUP_MALFORMED', `the archive holds an unsafe path: ${name}`);
  return { name, size: readOctal(h, 124, 12), type: flag === 0x35 ? 'dir' : 'file', mode: readOctal(h, 100, 8), mtime: readOctal(h, 136, 12) * 1000 };
}

/** What the reader calls for each entry: `data` for each piece of a file, `end` once it is whole. */
export interface TarSink {
  entry(header: TarEntryHeader): Promise<void> | void;
  data(chunk: Uint8Array): Promise<void> | void;
  end(header: TarEntryHeader): Promise<void> | void;
}

/**
 * Reads a tar stream, calling the sink in order. Throws BACKUP_MALFORMED on a corrupt header or
 * an archive that ends early (no end blocks).
 */
export async function readTar(source: AsyncIterable<Uint8Array>, sink: TarSink): Promise<void> {
  let pending = new Uint8Array(0);
  let current: TarEntryHeader | null = null;
  let remaining = 0;
  let padding = 0;
  let finished = false;
  for await (const chunk of source) {
    if (finished) continue;
    let buf: Uint8Array = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    pending = new Uint8Array(0);
    while (buf.length > 0 && !finished) {
      if (current) {
        const take = Math.min(remaining, buf.length);
        if (take > 0) await sink.data(buf.subarray(0, take));
        buf = buf.subarray(take);
        remaining -= take;
        if (remaining === 0) {
          const done = current;
          current = null;
          await sink.end(done);
        }
        continue;
      }
      if (padding > 0) {
        const skip = Math.min(padding, buf.length);
        buf = buf.subarray(skip);
        padding -= skip;
        continue;
      }
      if (buf.length < BLOCK) {
        pending = Uint8Array.from(buf);
        break;
      }
      const header = parseHeader(buf.subarray(0, BLOCK));
      buf = buf.subarray(BLOCK);
      if (header === null) {
        finished = true;
        break;
      }
      await sink.entry(header);
      if (header.type === 'file' && header.size > 0) {
        current = header;
        remaining = header.size;
        padding = tarPadding(header.size).length;
      } else {
        await sink.end(header);
      }
    }
  }
  if (!finished) throw new BackupError('BACKUP_MALFORMED', 'the archive ends before its end marker');
}
