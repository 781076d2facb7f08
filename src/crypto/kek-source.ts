/**
 * Where the key-encryption keys (KEKs) come from. A KEK only ever wraps DEKs (see
 * `wrapKey` in envelope.ts); it never seals column values itself.
 *
 * Versions: every KEK has a positive integer version (1..2^32-1, the uint32 stored in each
 * envelope header). **The primary KEK, the one new DEKs are wrapped with, is the highest
 * version** (`primaryKek`); lower versions stay available to unwrap older DEKs until those are
 * re-wrapped. `load()` returns the keys sorted by ascending version.
 *
 * Two sources:
 * - `createEnvKekSource(text)`: the GATEHOUSE_MASTER_KEYS value, `1:<key>,2:<key>` where each key
 *   is base64 or base64url (padding optional) of exactly 32 bytes. Rotation is the operator's job
 *   (append a version, restart), so `addVersion()` refuses.
 * - `createFileKekSource(path)`: a JSON key file, created on first load with one random key and
 *   mode 0600. It must stay owner-only; every group/other permission bit is refused with
 *   KEY_FILE_INSECURE (checked on the open file handle, so there is no window between check and
 *   read; not checked on Windows, which has no such bits). Every write goes to a temporary file
 *   in the same directory (created exclusively, 0600, fsynced) that is then linked (first
 *   creation, never overwriting a file another process created meanwhile) or renamed (rotation)
 *   into place, so a reader sees the old file or the new one, never a partial one. Rotations are
 *   serialized within the process and, across processes, by a `<path>.lock` file naming the
 *   holder's pid (a lock left by a dead process is taken over).
 *
 * Errors never contain key text: malformed input is reported by entry index and version only,
 * and JSON parse errors (whose messages quote the input) are not passed on.
 */
import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { link, open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { KEY_BYTES } from './aead.ts';
import { CryptoError } from './errors.ts';

export interface Kek {
  version: number;
  key: Buffer;
}

export interface KekSource {
  /** 'env' or 'file', for logs and `doctor`. */
  readonly name: string;
  /** All KEK versions, ascending; the last one is the primary. */
  load(): Promise<Kek[]>;
  /** Adds version max+1 with a fresh random key and returns it (file source only). */
  addVersion(): Promise<Kek>;
}

const MAX_VERSION = 0xffff_ffff;
const KEY_FILE_FORMAT = 1;
/** A key file is a few hundred bytes per version; anything past this is not one. */
const MAX_KEY_FILE_BYTES = 1024 * 1024;

/** The primary KEK: the highest version. Throws KEK_MISSING for an empty list. */
export function primaryKek(keks: readonly Kek[]): Kek {
  let primary: Kek | undefined;
  for (const kek of keks) if (primary === undefined || kek.version > primary.version) primary = kek;
  if (primary === undefined) throw new CryptoError('KEK_MISSING', 'no key-encryption key is configured');
  return primary;
}

const KEY_TEXT_RE = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** 32 bytes from base64 or base64url text, or undefined. */
function decodeKeyText(text: string): Buffer | undefined {
  if (!KEY_TEXT_RE.test(text)) return undefined;
  const key = Buffer.from(text, 'base64'); // Node's base64 decoder also reads the url-safe alphabet
  return key.length === KEY_BYTES ? key : undefined;
}

function parseVersion(text: string): number | undefined {
  if (!/^[0-9]{1,10}$/.test(text)) return undefined;
  const version = Number(text);
  return version >= 1 && version <= MAX_VERSION ? version : undefined;
}

function sortKeks(keks: Kek[]): Kek[] {
  return keks.sort((a, b) => a.version - b.version);
}

/**
 * Parses `1:<key>,2:<key>` (whitespace and newlines allowed around entries and around ':').
 * Throws `CryptoError('KEYRING_INVALID')` naming the 1-based entry index (and version when it
 * could be read) for: an empty list, an empty entry, an entry without ':', a version that is not
 * a positive integer, a duplicate version, a key that is not base64/base64url of exactly 32 bytes.
 * @example parseMasterKeys(process.env.GATEHOUSE_MASTER_KEYS ?? '')
 */
export function parseMasterKeys(text: string): Kek[] {
  if (typeof text !== 'string' || text.trim() === '') {
    throw new CryptoError('KEYRING_INVALID', 'the master key list is empty: expected 1:<base64 key>[,2:<base64 key>...]');
  }
  const seen = new Set<number>();
  const keks: Kek[] = [];
  text.split(',').forEach((raw, i) => {
    const entry = raw.trim();
    const where = `master key entry ${i + 1}`;
    if (entry === '') throw new CryptoError('KEYRING_INVALID', `${where} is empty`);
    const colon = entry.indexOf(':');
    if (colon < 0) throw new CryptoError('KEYRING_INVALID', `${where} is not of the form <version>:<key>`);
    const version = parseVersion(entry.slice(0, colon).trim());
    if (version === undefined) {
      throw new CryptoError('KEYRING_INVALID', `${where} has a version that is not a positive integer (1 to 4294967295)`);
    }
    if (seen.has(version)) throw new CryptoError('KEYRING_INVALID', `${where} repeats version ${version}`);
    const key = decodeKeyText(entry.slice(colon + 1).trim());
    if (key === undefined) {
      throw new CryptoError('KEYRING_INVALID', `${where} (version ${version}) is not base64 or base64url of exactly ${KEY_BYTES} bytes`);
    }
    seen.add(version);
    keks.push({ version, key });
  });
  return sortKeks(keks);
}

/** KEKs from the GATEHOUSE_MASTER_KEYS text. `load()` re-parses it on each call. */
export function createEnvKekSource(text: string): KekSource {
  return {
    name: 'env',
    load: async () => parseMasterKeys(text),
    addVersion: async () => {
      throw new CryptoError(
        'KEYRING_INVALID',
        'keys from the environment are rotated by the operator: add a new version to GATEHOUSE_MASTER_KEYS',
      );
    },
  };
}

// ---------------------------------------------------------------------------------------------
// File source

interface KeyFileEntry {
  version: number;
  key: string;
  createdAt?: string;
}

interface KeyFile {
  format: 1;
  keys: KeyFileEntry[];
}

function isErrno(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as NodeJS.ErrnoException).code ?? '');
}

function invalid(path: string, what: string): CryptoError {
  return new CryptoError('KEYRING_INVALID', `${path}: ${what}`);
}

/** Validates parsed key-file JSON; returns the entries sorted by version. */
function validateKeyFile(path: string, data: unknown): KeyFileEntry[] {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid(path, 'not a key file (expected a JSON object)');
  const file = data as Record<string, unknown>;
  if (file.format !== KEY_FILE_FORMAT) throw invalid(path, `unsupported key file format (expected "format": ${KEY_FILE_FORMAT})`);
  if (!Array.isArray(file.keys) || file.keys.length === 0) throw invalid(path, 'has no keys');
  const seen = new Set<number>();
  const entries: KeyFileEntry[] = [];
  file.keys.forEach((raw: unknown, i) => {
    const where = `key entry ${i + 1}`;
    if (typeof raw !== 'object' || raw === null) throw invalid(path, `${where} is not an object`);
    const entry = raw as Record<string, unknown>;
    const version = entry.version;
    if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > MAX_VERSION) {
      throw invalid(path, `${where} has a version that is not a positive integer (1 to 4294967295)`);
    }
    if (seen.has(version)) throw invalid(path, `${where} repeats version ${version}`);
    if (typeof entry.key !== 'string' || decodeKeyText(entry.key) === undefined) {
      throw invalid(path, `${where} (version ${version}) is not base64url of exactly ${KEY_BYTES} bytes`);
    }
    if (entry.createdAt !== undefined && typeof entry.createdAt !== 'string') {
      throw invalid(path, `${where} (version ${version}) has a createdAt that is not a string`);
    }
    seen.add(version);
    entries.push(typeof entry.createdAt === 'string' ? { version, key: entry.key, createdAt: entry.createdAt } : { version, key: entry.key });
  });
  return entries.sort((a, b) => a.version - b.version);
}

function toKeks(entries: readonly KeyFileEntry[]): Kek[] {
  return entries.map((e) => ({ version: e.version, key: decodeKeyText(e.key) as Buffer }));
}

function newEntry(version: number): { entry: KeyFileEntry; kek: Kek } {
  const key = randomBytes(KEY_BYTES);
  return { entry: { version, key: key.toString('base64url'), createdAt: new Date().toISOString() }, kek: { version, key } };
}

function serialize(entries: readonly KeyFileEntry[]): string {
  const file: KeyFile = { format: KEY_FILE_FORMAT, keys: [...entries] };
  return `${JSON.stringify(file, null, 2)}\n`;
}

function modeString(mode: number): string {
  return (mode & 0o777).toString(8).padStart(4, '0');
}

/** Reads and validates the key file; undefined when it does not exist. */
async function readKeyFile(path: string): Promise<KeyFileEntry[] | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw err;
  }
  let text: string;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw invalid(path, 'is not a regular file');
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw new CryptoError(
        'KEY_FILE_INSECURE',
        `${path} is readable by group or others (mode ${modeString(st.mode)}); run chmod 600 ${path}`,
      );
    }
    if (st.size > MAX_KEY_FILE_BYTES) throw invalid(path, 'is too large to be a key file');
    text = await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    // The parser's message quotes the input, which is key material: say only what is wrong.
    throw invalid(path, 'is not valid JSON');
  }
  return validateKeyFile(path, data);
}

async function fsyncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, 'r');
    await fh.sync();
  } catch {
    // Not every platform can open or fsync a directory; the rename is atomic regardless.
  } finally {
    await fh?.close();
  }
}

/**
 * Writes `content` to a fresh 0600 temporary file beside `path`, fsyncs it, and puts it in place:
 * `replace` renames over `path`; `create` links it to `path` and returns false (writing nothing)
 * when `path` already exists.
 */
async function writeAtomic(path: string, content: string, how: 'create' | 'replace'): Promise<boolean> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${randomBytes(8).toString('hex')}.tmp`);
  let placed = false;
  try {
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.chmod(0o600); // the umask may have removed the owner's write bit
      await fh.writeFile(content, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    if (how === 'replace') {
      await rename(tmp, path);
      placed = true;
    } else {
      try {
        await link(tmp, path);
      } catch (err) {
        if (isErrno(err, 'EEXIST')) return false;
        throw err;
      }
    }
    await fsyncDir(dir);
    return true;
  } finally {
    if (!placed) await rm(tmp, { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, 'EPERM');
  }
}

/** Holds `<path>.lock` (exclusive create) while `fn` runs; takes over a lock of a dead process. */
async function withFileLock<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const lockPath = `${path}.lock`;
  for (let attempt = 0; ; attempt++) {
    let fh: FileHandle;
    try {
      fh = await open(lockPath, 'wx', 0o600);
    } catch (err) {
      if (!isErrno(err, 'EEXIST') || attempt >= 1) {
        if (isErrno(err, 'EEXIST')) throw invalid(path, `another process is changing the key file (lock ${lockPath})`);
        throw err;
      }
      const holder = Number.parseInt(await readFile(lockPath, 'utf8').catch(() => ''), 10);
      if (Number.isInteger(holder) && holder > 0 && holder !== process.pid && isAlive(holder)) {
        throw invalid(path, `another process (pid ${holder}) is changing the key file`);
      }
      await rm(lockPath, { force: true });
      continue;
    }
    try {
      await fh.writeFile(String(process.pid), 'utf8');
    } finally {
      await fh.close();
    }
    try {
      return await fn();
    } finally {
      await rm(lockPath, { force: true });
    }
  }
}

/**
 * KEKs from a JSON key file `{ "format": 1, "keys": [{ "version", "key" (base64url), "createdAt" }] }`.
 * See the module comment for creation, permissions and atomic writes.
 */
export function createFileKekSource(path: string): KekSource {
  if (typeof path !== 'string' || path === '') throw new TypeError('the key file path must be a non-empty string');
  let queue: Promise<unknown> = Promise.resolve();
  /** One operation at a time on this source, so two rotations never both write version max+1. */
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  async function loadOrCreate(): Promise<KeyFileEntry[]> {
    const existing = await readKeyFile(path);
    if (existing !== undefined) return existing;
    const { entry } = newEntry(1);
    if (await writeAtomic(path, serialize([entry]), 'create')) return [entry];
    // Another process created the file first: use its key, not ours.
    const created = await readKeyFile(path);
    if (created === undefined) throw invalid(path, 'disappeared while being created');
    return created;
  }

  return {
    name: 'file',
    load: () => serial(async () => toKeks(await loadOrCreate())),
    addVersion: () =>
      serial(() =>
        withFileLock(path, async () => {
          const entries = await loadOrCreate();
          const max = entries.reduce((m, e) => Math.max(m, e.version), 0);
          if (max >= MAX_VERSION) throw invalid(path, 'has reached the highest key version');
          const { entry, kek } = newEntry(max + 1);
          await writeAtomic(path, serialize([...entries, entry]), 'replace');
          return kek;
        }),
      ),
  };
}
