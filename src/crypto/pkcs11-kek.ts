/**
 * Key-encryption keys inside a PKCS#11 token (an HSM; SoftHSM2 in tests) (DATA-1): a `RemoteKekSource`
 * like the KMS one. Each KEK version is a non-extractable, sensitive AES-256 secret key object in
 * the token, labelled `<keyLabel>.v<version>`; the token wraps and unwraps data keys itself with
 * CKM_AES_GCM (C_Encrypt / C_Decrypt, a random 96-bit IV, the keyring's DEK aad as associated data),
 * so Gatehouse never sees a KEK: the token refuses to give one out (CKA_SENSITIVE, CKA_EXTRACTABLE
 * false), and the keys are made in the token (C_GenerateKey), never imported.
 *
 * Versions are what the token holds: `refresh()` lists them, `addVersion()` makes version max+1
 * (the rotation; the keyring's rewrap then moves every data key over), `retire(v)` turns off
 * CKA_ENCRYPT of an older version (it never wraps again; it still unwraps copies made before).
 * The highest version that may still wrap is the primary.
 *
 * Faults (no fallback to any local key, ever): a module that does not load, a token that is not
 * there, or a session that breaks is KEK_UNAVAILABLE and `healthy()` false (the next call reconnects:
 * finalize, initialize, log in again); a wrong PIN is KEK_ACCESS_DENIED; a version whose key object
 * is gone from a token that is otherwise there is KEK_MISSING; a wrapped key the token will not open
 * (other aad, other version, altered) is DECRYPT_FAILED. Messages name the token, the version and
 * the PKCS#11 return value, never the PIN.
 *
 * pkcs11js (a native addon, reviewed: README's supply-chain line) is loaded only when this source
 * connects, so a node without an HSM never loads it.
 */
import { randomBytes } from 'node:crypto';
import { KEY_BYTES } from './aead.ts';
import { CryptoError } from './errors.ts';
import type { RemoteKekSource } from './kms-kek.ts';
import { acquire, ckr, release, type Handle, type Pkcs11Module, type SharedModule } from './pkcs11-module.ts';

export const PKCS11_WRAPPED_PREFIX = 'p1.';
const IV_BYTES = 12;
const TAG_BYTES = 16;
const MAX_VERSION = 0xffff_ffff;

export interface Pkcs11Options {
  /** Path of the PKCS#11 module (e.g. /usr/lib/softhsm/libsofthsm2.so). */
  module: string;
  /** The token, by label (unique among the slots). */
  tokenLabel: string;
  /** The user PIN. */
  pin: string;
  /** The KEKs' label prefix: version N is `<keyLabel>.v<N>`. */
  keyLabel: string;
}

interface Connection {
  shared: SharedModule;
  generation: number;
  slot: Handle;
  session: Handle;
  /** Key handle per version, and whether it may still wrap. */
  keys: Map<number, { handle: Handle; encrypt: boolean }>;
}

const ACCESS_DENIED = new Set(['CKR_PIN_INCORRECT', 'CKR_PIN_INVALID', 'CKR_PIN_LEN_RANGE', 'CKR_PIN_EXPIRED', 'CKR_PIN_LOCKED', 'CKR_USER_NOT_LOGGED_IN']);
const KEY_GONE = new Set(['CKR_OBJECT_HANDLE_INVALID', 'CKR_KEY_HANDLE_INVALID']);
const BAD_CIPHERTEXT = new Set(['CKR_ENCRYPTED_DATA_INVALID', 'CKR_ENCRYPTED_DATA_LEN_RANGE', 'CKR_GENERAL_ERROR', 'CKR_FUNCTION_FAILED']);

/** What the parts of one PKCS#11 source share: its options, its connection state, its one-at-a-time queue. */
interface Ctx {
  options: Pkcs11Options;
  where: string;
  st: { conn: Connection | null; up: boolean };
  versionOf: (label: string) => number | undefined;
  serial: <T>(fn: () => Promise<T>) => Promise<T>;
  unavailable: (what: string, err?: unknown) => CryptoError;
}

function createCtx(options: Pkcs11Options): Ctx {
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(options.keyLabel)) throw new CryptoError('KEYRING_INVALID', 'the PKCS#11 key label must be 1-64 letters, digits, . _ -');
  const where = `PKCS#11 token "${options.tokenLabel}"`;
  const labelPrefix = `${options.keyLabel}.v`;
  /** The version a key label names (`<keyLabel>.v<N>`), or undefined. */
  const versionOf = (label: string): number | undefined => {
    const rest = label.startsWith(labelPrefix) ? label.slice(labelPrefix.length) : '';
    return /^[1-9][0-9]{0,9}$/.test(rest) ? Number(rest) : undefined;
  };
  const st: Ctx['st'] = { conn: null, up: true };
  // One operation at a time on the session: PKCS#11 sessions are not concurrent.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn, fn);
    queue = run.catch(() => undefined);
    return run;
  };

  const unavailable = (what: string, err?: unknown): CryptoError =>
    new CryptoError('KEK_UNAVAILABLE', `the ${where} could not be used: ${what}${err !== undefined ? ` (${ckr(err) ?? 'no PKCS#11 answer'})` : ''}`);

  return { options, where, st, versionOf, serial, unavailable };
}

/** The session with the token: open (log in, list the KEKs), close, and whether the token still answers. */
function linkOps(ctx: Ctx) {
  const { options, where, st, versionOf, unavailable } = ctx;
  function disconnect(broken: boolean): void {
    const c = st.conn;
    st.conn = null;
    if (!c) return;
    try {
      c.shared.p11.C_CloseSession(c.session);
    } catch {
      // Already gone with the token.
    }
    // A token that stopped answering: the next connection initializes the library again.
    if (broken && c.shared.generation === c.generation) c.shared.broken = true;
    release(c.shared);
  }

  function slotOf(c: Connection): Handle {
    return c.slot;
  }

  function listKeys(c: Connection): Map<number, { handle: Handle; encrypt: boolean }> {
    const { lib, p11 } = c.shared;
    const session = c.session;
    p11.C_FindObjectsInit(session, [
      { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
      { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
    ]);
    let handles: Handle[];
    try {
      handles = p11.C_FindObjects(session, 10_000);
    } finally {
      p11.C_FindObjectsFinal(session);
    }
    const keys = new Map<number, { handle: Handle; encrypt: boolean }>();
    for (const handle of handles) {
      const [label, encrypt] = p11.C_GetAttributeValue(session, handle, [{ type: lib.CKA_LABEL }, { type: lib.CKA_ENCRYPT }]);
      const version = versionOf(Buffer.isBuffer(label?.value) ? label.value.toString('utf8') : '');
      if (version === undefined || version > MAX_VERSION) continue;
      if (keys.has(version)) throw new CryptoError('KEYRING_INVALID', `the ${where} holds two keys labelled ${options.keyLabel}.v${version}`);
      keys.set(version, { handle, encrypt: Buffer.isBuffer(encrypt?.value) ? encrypt.value[0] === 1 : false });
    }
    return keys;
  }

  async function connect(): Promise<Connection> {
    if (st.conn && st.conn.generation === st.conn.shared.generation) return st.conn;
    if (st.conn) disconnect(false);
    const shared = await acquire(options.module);
    const { lib, p11 } = shared;
    let session: Handle | null = null;
    try {
      const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === options.tokenLabel);
      if (!slot) throw new CryptoError('KEK_UNAVAILABLE', `no ${where} is present in ${options.module}`);
      session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
      try {
        p11.C_Login(session, lib.CKU_USER, options.pin);
      } catch (err) {
        // Login state is per token and process: another source of this process logged in already.
        if (ckr(err) !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
      }
      const c: Connection = { shared, generation: shared.generation, slot, session, keys: new Map() };
      c.keys = listKeys(c);
      st.conn = c;
      st.up = true;
      return c;
    } catch (err) {
      if (session) {
        try {
          p11.C_CloseSession(session);
        } catch {
          // Gone already.
        }
      }
      release(shared);
      if (err instanceof CryptoError) throw err;
      const code = ckr(err);
      if (code && ACCESS_DENIED.has(code)) throw new CryptoError('KEK_ACCESS_DENIED', `the ${where} refused this node's PIN (${code})`);
      if (!session) shared.broken = true;
      throw unavailable('opening a session failed', err);
    }
  }

  /** After a PKCS#11 failure: is the token itself still there (then the failure is about this key)? */
  function tokenThere(c: Connection): boolean {
    try {
      return c.shared.p11.C_GetTokenInfo(slotOf(c)).label.trim() === options.tokenLabel;
    } catch {
      return false;
    }
  }

  /** Runs `fn` on the session for `version`'s key; maps failures; marks an outage unhealthy. */
  return { disconnect, listKeys, connect, tokenThere, slotOf };
}

/** Operations with one KEK version in the token, mapping PKCS#11 failures to the keyring's codes. */
function keyOps(ctx: Ctx, link: ReturnType<typeof linkOps>) {
  const { options, where, st, serial, unavailable } = ctx;
  const { disconnect, listKeys, connect, tokenThere } = link;
  function withKey<T>(version: number, op: string, fn: (c: Connection, key: Handle) => T): Promise<T> {
    return serial(async () => {
      const c = await connect().catch((err: unknown) => {
        st.up = false;
        throw err;
      });
      const key = c.keys.get(version);
      if (!key) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not in the ${where}`);
      try {
        const result = fn(c, key.handle);
        st.up = true;
        return result;
      } catch (err) {
        if (err instanceof CryptoError) throw err;
        const code = ckr(err);
        if (!tokenThere(c)) {
          st.up = false;
          disconnect(true);
          throw unavailable(`${op} for key-encryption key version ${version} failed and the token does not answer`, err);
        }
        if (code && KEY_GONE.has(code)) {
          c.keys = listKeys(c);
          throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is gone from the ${where} (${code})`);
        }
        if (code === 'CKR_KEY_FUNCTION_NOT_PERMITTED') throw new CryptoError('KEY_RETIRED', `key-encryption key version ${version} is retired in the ${where}: it no longer wraps (${code})`);
        if (code && ACCESS_DENIED.has(code)) throw new CryptoError('KEK_ACCESS_DENIED', `the ${where} refused ${op} for key-encryption key version ${version} (${code})`);
        if (op === 'C_Decrypt' && code && BAD_CIPHERTEXT.has(code)) {
          throw new CryptoError('DECRYPT_FAILED', `the ${where} could not unwrap this data key under key-encryption key version ${version} (${code})`);
        }
        st.up = false;
        disconnect(false);
        throw unavailable(`${op} for key-encryption key version ${version} failed`, err);
      }
    });
  }

  const gcm = (lib: Pkcs11Module, iv: Buffer, aad: Buffer) => ({
    mechanism: lib.CKM_AES_GCM,
    parameter: { type: lib.CK_PARAMS_AES_GCM, iv, aad, ivBits: IV_BYTES * 8, tagBits: TAG_BYTES * 8 },
  });

  function encryptWith(version: number, dek: Buffer, aad: Buffer): Promise<string> {
    return withKey(version, 'C_Encrypt', (c, key) => {
      const iv = randomBytes(IV_BYTES);
      c.shared.p11.C_EncryptInit(c.session, gcm(c.shared.lib, iv, aad), key);
      const out = c.shared.p11.C_Encrypt(c.session, dek, Buffer.alloc(dek.length + TAG_BYTES + 16));
      return PKCS11_WRAPPED_PREFIX + Buffer.concat([iv, out]).toString('base64url');
    });
  }

  function decode(wrapped: string): { iv: Buffer; body: Buffer } {
    const text = typeof wrapped === 'string' && wrapped.startsWith(PKCS11_WRAPPED_PREFIX) ? wrapped.slice(PKCS11_WRAPPED_PREFIX.length) : '';
    const bytes = Buffer.from(text, 'base64url');
    if (text === '' || bytes.toString('base64url') !== text || bytes.length !== IV_BYTES + KEY_BYTES + TAG_BYTES) {
      throw new CryptoError('ENVELOPE_MALFORMED', 'the value is not a data key wrapped by a PKCS#11 token');
    }
    return { iv: bytes.subarray(0, IV_BYTES), body: bytes.subarray(IV_BYTES) };
  }

  const primaryOf = (c: Connection | null): number => {
    let primary = 0;
    for (const [v, k] of c?.keys ?? []) if (k.encrypt && v > primary) primary = v;
    if (primary === 0) throw new CryptoError('KEK_MISSING', `the ${where} holds no key-encryption key labelled ${options.keyLabel}.v<N> that may wrap`);
    return primary;
  };

  return { withKey, encryptWith, decode, primaryOf, gcm };
}

/** Making a new KEK version in the token, and retiring an old one. */
function adminOps(ctx: Ctx, link: ReturnType<typeof linkOps>, keys: ReturnType<typeof keyOps>) {
  const { options, where, serial, unavailable } = ctx;
  const { connect, listKeys } = link;
  const { primaryOf } = keys;
  const addVersion = (): Promise<number> =>
    serial(async () => {
      const c = await connect();
      c.keys = listKeys(c);
      const version = Math.max(0, ...c.keys.keys()) + 1;
      if (version > MAX_VERSION) throw new CryptoError('KEYRING_INVALID', `the ${where} has reached the highest key version`);
      const { lib } = c.shared;
      try {
        // Made in the token, never imported: sensitive and not extractable, so no one reads it out.
        c.shared.p11.C_GenerateKey(c.session, { mechanism: lib.CKM_AES_KEY_GEN }, [
          { type: lib.CKA_CLASS, value: lib.CKO_SECRET_KEY },
          { type: lib.CKA_KEY_TYPE, value: lib.CKK_AES },
          { type: lib.CKA_VALUE_LEN, value: KEY_BYTES },
          { type: lib.CKA_TOKEN, value: true },
          { type: lib.CKA_PRIVATE, value: true },
          { type: lib.CKA_SENSITIVE, value: true },
          { type: lib.CKA_EXTRACTABLE, value: false },
          { type: lib.CKA_ENCRYPT, value: true },
          { type: lib.CKA_DECRYPT, value: true },
          { type: lib.CKA_WRAP, value: false },
          { type: lib.CKA_UNWRAP, value: false },
          { type: lib.CKA_SIGN, value: false },
          { type: lib.CKA_VERIFY, value: false },
          { type: lib.CKA_DERIVE, value: false },
          { type: lib.CKA_LABEL, value: `${options.keyLabel}.v${version}` },
          { type: lib.CKA_ID, value: Buffer.from(`${options.keyLabel}.v${version}`, 'utf8') },
        ]);
      } catch (err) {
        throw unavailable(`making key-encryption key version ${version} failed`, err);
      }
      c.keys = listKeys(c);
      return version;
    });
  const retire = (version: number): Promise<void> =>
    serial(async () => {
      const c = await connect();
      c.keys = listKeys(c);
      const key = c.keys.get(version);
      if (!key) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not in the ${where}`);
      if (version === primaryOf(c)) throw new CryptoError('KEYRING_INVALID', `key-encryption key version ${version} is the primary: add a new version before retiring it`);
      try {
        c.shared.p11.C_SetAttributeValue(c.session, key.handle, [{ type: c.shared.lib.CKA_ENCRYPT, value: false }]);
      } catch (err) {
        throw unavailable(`retiring key-encryption key version ${version} failed`, err);
      }
      c.keys = listKeys(c);
    });
  return { addVersion, retire };
}

/**
 * @example const source = createPkcs11KekSource({ module: '/usr/lib/softhsm/libsofthsm2.so', tokenLabel: 'gatehouse', pin, keyLabel: 'gatehouse-kek' })
 */
export function createPkcs11KekSource(options: Pkcs11Options): RemoteKekSource & { close(): Promise<void> } {
  const ctx = createCtx(options);
  const { where, st, serial, unavailable } = ctx;
  const link = linkOps(ctx);
  const { disconnect, listKeys, connect, tokenThere } = link;
  const keyops = keyOps(ctx, link);
  const { withKey, encryptWith, decode, primaryOf, gcm } = keyops;
  const admin = adminOps(ctx, link, keyops);
  const source: RemoteKekSource & { close(): Promise<void> } = {
    name: 'pkcs11',
    versions: () => [...(st.conn?.keys.keys() ?? [])].sort((a, b) => a - b),
    locationOf: (version) => {
      const key = st.conn?.keys.get(version);
      return key ? `token "${options.tokenLabel}" key "${options.keyLabel}.v${version}"${key.encrypt ? '' : ' (retired: unwraps only)'}` : undefined;
    },
    healthy: () => st.up,
    refresh: () =>
      serial(async () => {
        const c = await connect().catch((err: unknown) => {
          st.up = false;
          throw err;
        });
        try {
          c.keys = listKeys(c);
        } catch (err) {
          if (err instanceof CryptoError) throw err;
          st.up = false;
          disconnect(!tokenThere(c));
          throw unavailable('listing its keys failed', err);
        }
      }),
    async check() {
      await source.refresh!();
      const probe = randomBytes(KEY_BYTES);
      const aad = Buffer.from('gatehouse.pkcs11.startup-check', 'utf8');
      primaryOf(st.conn);
      for (const version of source.versions()) {
        // A retired version only unwraps: its check is that the token still has it.
        if (!st.conn?.keys.get(version)?.encrypt) continue;
        const opened = await source.unwrap(version, await encryptWith(version, probe, aad), aad);
        if (!opened.equals(probe)) throw new CryptoError('KEYRING_MISMATCH', `key-encryption key version ${version} in the ${where} did not give back what it wrapped`);
      }
    },
    async generateDek(aad) {
      const version = primaryOf(st.conn);
      const key = randomBytes(KEY_BYTES);
      return { version, key, wrapped: await encryptWith(version, key, aad) };
    },
    wrap: (version, dek, aad) => encryptWith(version, dek, aad),
    async unwrap(version, wrapped, aad) {
      const { iv, body } = decode(wrapped);
      return withKey(version, 'C_Decrypt', (c, key) => {
        c.shared.p11.C_DecryptInit(c.session, gcm(c.shared.lib, iv, aad), key);
        const out = c.shared.p11.C_Decrypt(c.session, body, Buffer.alloc(body.length));
        if (out.length !== KEY_BYTES) throw new CryptoError('DECRYPT_FAILED', `the ${where} gave back ${out.length} bytes, not a data key`);
        return Buffer.from(out);
      });
    },
    addVersion: () => admin.addVersion(),
    retire: (version) => admin.retire(version),
    close: () =>
      serial(async () => {
        disconnect(false);
      }),
  };
  return source;
}
