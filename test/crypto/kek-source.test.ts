/**
 * KEK sources: the GATEHOUSE_MASTER_KEYS parser and the key file (creation, permissions,
 * validation, atomic rotation).
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CryptoErrorCode } from '../../src/crypto/errors.ts';
import { CryptoError } from '../../src/crypto/errors.ts';
import type { Kek } from '../../src/crypto/kek-source.ts';
import { createEnvKekSource, createFileKekSource, parseMasterKeys, primaryKek } from '../../src/crypto/kek-source.ts';

const posix = process.platform !== 'win32';

async function refusal(p: Promise<unknown> | (() => unknown)): Promise<CryptoError> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    if (err instanceof CryptoError) return err;
    throw err;
  }
  throw new Error('expected a CryptoError');
}

function expectNoKeyText(message: string, keyTexts: readonly string[]): void {
  for (const key of keyTexts) {
    // Not the key, nor any 8-character piece of it.
    for (let i = 0; i + 8 <= key.length; i += 4) expect(message).not.toContain(key.slice(i, i + 8));
  }
}

describe('parseMasterKeys', () => {
  const k1 = randomBytes(32);
  const k2 = randomBytes(32);
  const k3 = randomBytes(32);

  it('accepts base64 and base64url, padded or not, with whitespace and newlines; sorts by version', () => {
    const text = `\n  3:${k3.toString('base64')} ,\n\t1 : ${k1.toString('base64url')},2:${k2.toString('base64url')}=\n`;
    const keks = parseMasterKeys(text);
    expect(keks.map((k) => k.version)).toEqual([1, 2, 3]);
    expect(keks[0]?.key.equals(k1)).toBe(true);
    expect(keks[1]?.key.equals(k2)).toBe(true);
    expect(keks[2]?.key.equals(k3)).toBe(true);
    expect(parseMasterKeys(`4294967295:${k1.toString('base64')}`)[0]?.version).toBe(4294967295);
  });

  const cases: [string, string, RegExp][] = [
    ['empty', '', /empty/],
    ['blank', '  \n ', /empty/],
    ['empty entry (trailing comma)', `1:${k1.toString('base64url')},`, /entry 2 is empty/],
    ['no colon', k1.toString('base64url'), /entry 1 is not of the form/],
    ['no version', `:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['version 0', `0:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['negative version', `-1:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['fractional version', `1.5:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['non-numeric version', `v1:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['version past uint32', `4294967296:${k1.toString('base64url')}`, /entry 1 has a version/],
    ['duplicate version', `1:${k1.toString('base64url')},2:${k2.toString('base64url')},1:${k3.toString('base64url')}`, /entry 3 repeats version 1/],
    ['31-byte key', `1:${randomBytes(31).toString('base64url')}`, /entry 1 \(version 1\) is not base64/],
    ['33-byte key', `2:${randomBytes(33).toString('base64url')}`, /entry 1 \(version 2\) is not base64/],
    ['empty key', '1:', /entry 1 \(version 1\) is not base64/],
    ['hex key', `1:${k1.toString('hex')}`, /entry 1 \(version 1\) is not base64/],
    ['stray character', `1:${k1.toString('base64url').slice(0, 20)}!${k1.toString('base64url').slice(21)}`, /entry 1 \(version 1\)/],
    ['space inside key', `1:${k1.toString('base64url').slice(0, 20)} ${k1.toString('base64url').slice(20)}`, /entry 1 \(version 1\)/],
  ];
  for (const [label, text, message] of cases) {
    it(`refuses ${label} with KEYRING_INVALID, without echoing key text`, async () => {
      const err = await refusal(() => parseMasterKeys(text));
      expect(err.code).toBe('KEYRING_INVALID');
      expect(err.message).toMatch(message);
      expectNoKeyText(err.message, [k1, k2, k3].flatMap((k) => [k.toString('base64'), k.toString('base64url'), k.toString('hex')]));
    });
  }
});

describe('createEnvKekSource', () => {
  it('loads the parsed keys; the primary is the highest version', async () => {
    const k1 = randomBytes(32);
    const k2 = randomBytes(32);
    const source = createEnvKekSource(`2:${k2.toString('base64')},1:${k1.toString('base64')}`);
    expect(source.name).toBe('env');
    const keks = await source.load();
    expect(keks.map((k) => k.version)).toEqual([1, 2]);
    expect(primaryKek(keks).key.equals(k2)).toBe(true);
  });

  it('refuses to add a version', async () => {
    const err = await refusal(createEnvKekSource(`1:${randomBytes(32).toString('base64')}`).addVersion());
    expect(err.code).toBe('KEYRING_INVALID');
    expect(err.message).toBe('keys from the environment are rotated by the operator: add a new version to GATEHOUSE_MASTER_KEYS');
  });

  it('rejects (not throws synchronously) an invalid list on load', async () => {
    const promise = createEnvKekSource('nonsense').load();
    expect((await refusal(promise)).code).toBe('KEYRING_INVALID');
  });
});

describe('primaryKek', () => {
  it('is the highest version, whatever the order', () => {
    const keks: Kek[] = [3, 10, 2].map((version) => ({ version, key: randomBytes(32) }));
    expect(primaryKek(keks).version).toBe(10);
  });

  it('throws KEK_MISSING for no keys', async () => {
    expect((await refusal(() => primaryKek([]))).code).toBe('KEK_MISSING');
  });
});

describe('createFileKekSource', () => {
  let dir: string;
  let path: string;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'gatehouse-kek-'));
    path = join(dir, 'master.key.json');
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const modeOf = (p: string): number => statSync(p).mode & 0o777;
  const others = (): string[] => readdirSync(dir).filter((f) => f !== 'master.key.json');

  it('creates the file on first load: one random key, mode 0600, nothing else left behind', async () => {
    const source = createFileKekSource(path);
    expect(source.name).toBe('file');
    const keks = await source.load();
    expect(keks).toHaveLength(1);
    expect(keks[0]?.version).toBe(1);
    expect(keks[0]?.key).toHaveLength(32);
    if (posix) expect(modeOf(path)).toBe(0o600);
    expect(others()).toEqual([]);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { format: number; keys: { version: number; key: string; createdAt: string }[] };
    expect(file.format).toBe(1);
    expect(file.keys).toHaveLength(1);
    expect(file.keys[0]?.version).toBe(1);
    expect(Buffer.from(file.keys[0]?.key ?? '', 'base64url').equals(keks[0]?.key ?? Buffer.alloc(0))).toBe(true);
    expect(file.keys[0]?.key).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(Number.isNaN(Date.parse(file.keys[0]?.createdAt ?? ''))).toBe(false);
    // Later loads, from this source or another, read the same key.
    expect((await source.load())[0]?.key.equals(keks[0]?.key ?? Buffer.alloc(0))).toBe(true);
    expect((await createFileKekSource(path).load())[0]?.key.equals(keks[0]?.key ?? Buffer.alloc(0))).toBe(true);
  });

  it('two sources creating the same file at once agree on one key', async () => {
    const results = await Promise.all(Array.from({ length: 6 }, () => createFileKekSource(path).load()));
    const keys = new Set(results.map((keks) => keks[0]?.key.toString('hex')));
    expect(keys.size).toBe(1);
    expect(others()).toEqual([]);
  });

  it.runIf(posix)('refuses a file readable by group or others with KEY_FILE_INSECURE', async () => {
    await createFileKekSource(path).load();
    for (const mode of [0o644, 0o640, 0o604, 0o660, 0o601, 0o610]) {
      chmodSync(path, mode);
      const err = await refusal(createFileKekSource(path).load());
      expect(err.code).toBe('KEY_FILE_INSECURE');
      expect(err.message).toBe(
        `${path} is readable by group or others (mode ${mode.toString(8).padStart(4, '0')}); run chmod 600 ${path}`,
      );
    }
    chmodSync(path, 0o644);
    expect((await refusal(createFileKekSource(path).addVersion())).code).toBe('KEY_FILE_INSECURE');
    chmodSync(path, 0o400);
    expect(await createFileKekSource(path).load()).toHaveLength(1);
  });

  it('addVersion appends max+1 with a fresh key, keeps the old keys, rewrites 0600 atomically', async () => {
    const source = createFileKekSource(path);
    const [first] = await source.load();
    const added = await source.addVersion();
    expect(added.version).toBe(2);
    expect(added.key).toHaveLength(32);
    expect(added.key.equals(first?.key ?? Buffer.alloc(0))).toBe(false);
    const keks = await createFileKekSource(path).load();
    expect(keks.map((k) => k.version)).toEqual([1, 2]);
    expect(keks[0]?.key.equals(first?.key ?? Buffer.alloc(0))).toBe(true);
    expect(keks[1]?.key.equals(added.key)).toBe(true);
    expect(primaryKek(keks).version).toBe(2);
    if (posix) expect(modeOf(path)).toBe(0o600);
    expect(others()).toEqual([]);
  });

  it('keeps createdAt of existing keys and continues from the highest version', async () => {
    const k = randomBytes(32).toString('base64url');
    writeFileSync(path, JSON.stringify({ format: 1, keys: [{ version: 5, key: k, createdAt: '2026-01-01T00:00:00.000Z' }] }), { mode: 0o600 });
    const added = await createFileKekSource(path).addVersion();
    expect(added.version).toBe(6);
    const file = JSON.parse(readFileSync(path, 'utf8')) as { keys: { version: number; key: string; createdAt: string }[] };
    expect(file.keys[0]).toEqual({ version: 5, key: k, createdAt: '2026-01-01T00:00:00.000Z' });
    expect(file.keys[1]?.version).toBe(6);
  });

  it('concurrent rotations get distinct versions, and a reader never sees a partial file', async () => {
    const source = createFileKekSource(path);
    await source.load();
    let reads = 0;
    let stop = false;
    const reader = (async () => {
      while (!stop) {
        const text = await readFile(path, 'utf8');
        const parsed = JSON.parse(text) as { format: number; keys: unknown[] };
        expect(parsed.format).toBe(1);
        reads++;
      }
    })();
    const added = await Promise.all(Array.from({ length: 12 }, () => source.addVersion()));
    stop = true;
    await reader;
    expect(reads).toBeGreaterThan(0);
    expect(added.map((k) => k.version).sort((a, b) => a - b)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    const keks = await source.load();
    expect(keks.map((k) => k.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    expect(new Set(keks.map((k) => k.key.toString('hex'))).size).toBe(13);
    expect(others()).toEqual([]);
  });

  it('refuses to rotate while another live process holds the lock, and takes over a dead one', async () => {
    const source = createFileKekSource(path);
    await source.load();
    writeFileSync(`${path}.lock`, String(process.ppid), { mode: 0o600 });
    const err = await refusal(source.addVersion());
    expect(err.code).toBe('KEYRING_INVALID');
    expect(err.message).toContain(`pid ${process.ppid}`);
    expect((await source.load()).map((k) => k.version)).toEqual([1]);
    // A pid that cannot be running (beyond the kernel's maximum).
    writeFileSync(`${path}.lock`, '2147483646', { mode: 0o600 });
    expect((await source.addVersion()).version).toBe(2);
    expect(others()).toEqual([]);
  });

  describe('malformed files are KEYRING_INVALID, naming the path and not the key text', () => {
    const key = randomBytes(32).toString('base64url');
    const other = randomBytes(32).toString('base64url');
    const write = (text: string): void => writeFileSync(path, text, { mode: 0o600 });
    const cases: [string, () => string, RegExp][] = [
      ['not JSON (containing the key)', () => `{"format":1,"keys":[{"version":1,"key":"${key}"`, /is not valid JSON/],
      ['a key as bare text', () => key, /is not valid JSON/],
      ['a JSON array', () => `["${key}"]`, /not a key file/],
      ['wrong format', () => JSON.stringify({ format: 2, keys: [{ version: 1, key }] }), /unsupported key file format/],
      ['no keys', () => JSON.stringify({ format: 1, keys: [] }), /has no keys/],
      ['keys not an array', () => JSON.stringify({ format: 1, keys: { version: 1, key } }), /has no keys/],
      ['version 0', () => JSON.stringify({ format: 1, keys: [{ version: 0, key }] }), /key entry 1 has a version/],
      ['version as string', () => JSON.stringify({ format: 1, keys: [{ version: '1', key }] }), /key entry 1 has a version/],
      [
        'duplicate versions',
        () => JSON.stringify({ format: 1, keys: [{ version: 1, key }, { version: 1, key: other }] }),
        /key entry 2 repeats version 1/,
      ],
      [
        'short key',
        () => JSON.stringify({ format: 1, keys: [{ version: 1, key }, { version: 2, key: key.slice(0, 40) }] }),
        /key entry 2 \(version 2\) is not base64url of exactly 32 bytes/,
      ],
      ['long key', () => JSON.stringify({ format: 1, keys: [{ version: 3, key: `${key}AAAA` }] }), /key entry 1 \(version 3\)/],
      ['createdAt not a string', () => JSON.stringify({ format: 1, keys: [{ version: 1, key, createdAt: 5 }] }), /createdAt/],
    ];
    for (const [label, text, message] of cases) {
      it(label, async () => {
        write(text());
        for (const op of [() => createFileKekSource(path).load(), () => createFileKekSource(path).addVersion()]) {
          const err = await refusal(op());
          expect(err.code).toBe('KEYRING_INVALID' satisfies CryptoErrorCode);
          expect(err.message.startsWith(`${path}: `)).toBe(true);
          expect(err.message).toMatch(message);
          expectNoKeyText(err.message, [key, other]);
        }
        // A refused file is left as it was.
        expect(readFileSync(path, 'utf8')).toBe(text());
      });
    }
  });

  it('refuses a directory at the key path', async () => {
    const err = await refusal(createFileKekSource(dir).load());
    expect(err.code).toBe('KEYRING_INVALID');
  });
});
