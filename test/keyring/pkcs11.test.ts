/**
 * The PKCS#11 adapter of the keyring (DATA-1) against a real SoftHSM2 token initialised for this
 * run (test/support/softhsm.ts): KEKs are AES keys made in the token, sensitive and never
 * extractable; data keys are wrapped and unwrapped by the token (AES-GCM, the DEK's aad bound);
 * rotation makes a new version in the token, the keyring's rewrap moves every data key over and
 * the old version is retired; `keys status` says where each KEK lives; faults: a wrong PIN, a token
 * that is not there, a key deleted in the token, and the token vanishing while running (cached
 * data keys serve for the cache lifetime, then KEK_UNAVAILABLE, never a local key).
 */
import { randomUUID } from 'node:crypto';
import { rename } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../../src/crypto/errors.ts';
import { createPkcs11KekSource } from '../../src/crypto/pkcs11-kek.ts';
import { createKeyring, type Keyring } from '../../src/keyring/keyring.ts';
import type { Db } from '../../src/store/db-types.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { createPgliteDb } from '../../src/store/pglite.ts';
import { SOFTHSM_MODULE, softhsmSkipReason, startSoftHsm, type SoftHsm } from '../support/softhsm.ts';

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (err: unknown) => (err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`),
  );

/** The test's own look into the token, as an operator's tool would: attributes, deleting a key. */
function inspector(tokenLabel: string, pin: string) {
  const lib = createRequire(import.meta.url)('pkcs11js') as typeof import('pkcs11js');
  const p11 = new lib.PKCS11();
  p11.load(SOFTHSM_MODULE);
  try {
    p11.C_Initialize();
  } catch (err) {
    if ((err as Error).message !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw err;
  }
  const slot = p11.C_GetSlotList(true).find((s) => p11.C_GetTokenInfo(s).label.trim() === tokenLabel)!;
  const session = p11.C_OpenSession(slot, lib.CKF_SERIAL_SESSION | lib.CKF_RW_SESSION);
  try {
    p11.C_Login(session, lib.CKU_USER, pin);
  } catch (err) {
    if ((err as Error).message !== 'CKR_USER_ALREADY_LOGGED_IN') throw err;
  }
  const find = (label: string) => {
    p11.C_FindObjectsInit(session, [{ type: lib.CKA_LABEL, value: label }]);
    const found = p11.C_FindObjects(session, 10);
    p11.C_FindObjectsFinal(session);
    return found;
  };
  return {
    lib,
    find,
    attribute: (label: string, type: number) => p11.C_GetAttributeValue(session, find(label)[0]!, [{ type }])[0]!.value as Buffer,
    destroy: (label: string) => {
      for (const h of find(label)) p11.C_DestroyObject(session, h);
    },
    close: () => p11.C_CloseSession(session),
  };
}

describe.skipIf(softhsmSkipReason !== undefined)(`the keyring with KEKs in a PKCS#11 token (SoftHSM2)${softhsmSkipReason ? `: ${softhsmSkipReason}` : ''}`, () => {
  let hsm: SoftHsm;
  let token: { label: string; pin: string };
  let spare: { label: string; pin: string };
  let db: Db;
  let kv: Kv;
  let clock = Date.now();
  const opened: Keyring[] = [];
  const tenant = randomUUID();
  const ref = (rowId: string) => ({ table: 'notes', column: 'body', rowId });
  const sourceFor = (t = token, keyLabel = 'kek') => createPkcs11KekSource({ module: SOFTHSM_MODULE, tokenLabel: t.label, pin: t.pin, keyLabel });
  const open = async (keyLabel = 'kek', cacheTtlMs = 60_000): Promise<Keyring> => {
    const keyring = await createKeyring({ db, kv, source: sourceFor(token, keyLabel), cacheTtlMs, now: () => clock });
    opened.push(keyring);
    return keyring;
  };

  beforeAll(async () => {
    hsm = await startSoftHsm();
    token = hsm.initToken('gh-keys');
    spare = hsm.initToken('gh-spare');
    db = await createPgliteDb({ dataDir: undefined });
    await db.migrate();
    kv = createMemoryKv();
    await db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenant]));
  });
  afterAll(async () => {
    for (const k of opened) await k.close();
    await kv?.close();
    await db?.close();
    await hsm?.cleanup();
  });

  it('round trip: the KEK is made in the token, sensitive and not extractable; the token wraps and unwraps data keys', async () => {
    const source = sourceFor();
    await source.refresh!();
    expect(source.versions()).toEqual([]);
    expect(await source.addVersion!()).toBe(1);
    await source.check();
    const look = inspector(token.label, token.pin);
    try {
      expect(look.attribute('kek.v1', look.lib.CKA_SENSITIVE)[0]).toBe(1);
      expect(look.attribute('kek.v1', look.lib.CKA_EXTRACTABLE)[0]).toBe(0);
      // attack: reading the KEK out of the token is refused by the token itself.
      expect(() => look.attribute('kek.v1', look.lib.CKA_VALUE)).toThrow('CKR_ATTRIBUTE_SENSITIVE');
    } finally {
      look.close();
    }
    const aad = Buffer.from('gatehouse.dek.v1\ndek-1\ntenant\n\n1', 'utf8');
    const { version, key, wrapped } = await source.generateDek(aad);
    expect(version).toBe(1);
    expect(wrapped.startsWith('p1.')).toBe(true);
    expect(wrapped).not.toContain(key.toString('base64url'));
    expect((await source.unwrap(1, wrapped, aad)).equals(key)).toBe(true);
    await source.close();
  });

  it('attack: a wrapped data key moved to another row (other aad), another version or altered is refused by the token (DECRYPT_FAILED)', async () => {
    const source = sourceFor();
    await source.check();
    const aad = Buffer.from('row-a', 'utf8');
    const { wrapped } = await source.generateDek(aad);
    expect(await codeOf(source.unwrap(1, wrapped, Buffer.from('row-b', 'utf8')))).toBe('DECRYPT_FAILED');
    const bytes = Buffer.from(wrapped.slice(3), 'base64url');
    bytes[20]! ^= 1;
    expect(await codeOf(source.unwrap(1, `p1.${bytes.toString('base64url')}`, aad))).toBe('DECRYPT_FAILED');
    expect(await codeOf(source.unwrap(1, 'k1.notours', aad))).toBe('ENVELOPE_MALFORMED');
    expect(await codeOf(source.unwrap(7, wrapped, aad))).toBe('KEK_MISSING');
    expect(source.healthy()).toBe(true);
    await source.close();
  });

  it('faults at start: a wrong PIN is KEK_ACCESS_DENIED, a token that is not there or a module that does not load KEK_UNAVAILABLE', async () => {
    const wrongPin = createPkcs11KekSource({ module: SOFTHSM_MODULE, tokenLabel: spare.label, pin: 'not-the-pin', keyLabel: 'kek' });
    const denied = await wrongPin.check().catch((e: unknown) => e as CryptoError);
    expect(denied).toMatchObject({ code: 'KEK_ACCESS_DENIED' });
    expect((denied as Error).message).not.toContain('not-the-pin');
    expect(await codeOf(createPkcs11KekSource({ module: SOFTHSM_MODULE, tokenLabel: 'no-such-token', pin: '1', keyLabel: 'kek' }).check())).toBe('KEK_UNAVAILABLE');
    expect(await codeOf(createPkcs11KekSource({ module: '/nonexistent/libpkcs11.so', tokenLabel: token.label, pin: token.pin, keyLabel: 'kek' }).check())).toBe('KEK_UNAVAILABLE');
  });

  it('rotation: a new version made in the token, the rewrap moves every data key, the old version is retired; status says where each KEK lives', async () => {
    const keyring = await open();
    const sealed = await keyring.seal({ tenantId: tenant }, ref('r'), 'secret r');
    const operator = sourceFor();
    expect(await operator.addVersion!()).toBe(2);
    await keyring.reloadKeks();
    expect(keyring.primaryKekVersion()).toBe(2);
    expect(await keyring.rewrapAll()).toBeGreaterThan(0);
    await operator.retire!(1);
    const status = await keyring.status();
    expect(status.keks).toEqual([
      expect.objectContaining({ version: 1, primary: false, wrapsDeks: 0, location: `pkcs11 token "${token.label}" key "kek.v1" (retired: unwraps only)` }),
      expect.objectContaining({ version: 2, primary: true, location: `pkcs11 token "${token.label}" key "kek.v2"` }),
    ]);
    expect(status.keks[1]!.wrapsDeks).toBeGreaterThan(0);
    // A retired version never wraps again; values stay readable through a fresh node.
    expect(await codeOf(operator.wrap(1, Buffer.alloc(32), Buffer.from('x')))).toBe('KEY_RETIRED');
    expect(operator.healthy()).toBe(true);
    expect(await codeOf(operator.retire!(2))).toBe('KEYRING_INVALID');
    const fresh = await open();
    expect((await fresh.open({ tenantId: tenant }, ref('r'), sealed)).toString()).toBe('secret r');
    await operator.close();
  });

  it('a key deleted in the token: its data keys are KEK_MISSING, never opened another way', async () => {
    const source = sourceFor(token, 'gone');
    await source.addVersion!();
    const keyring = await createKeyring({ db, kv, source, cacheTtlMs: 1000, now: () => clock });
    opened.push(keyring);
    const other = randomUUID();
    await db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [other]));
    const sealed = await keyring.seal({ tenantId: other }, ref('d'), 'secret d');
    const look = inspector(token.label, token.pin);
    look.destroy('gone.v1');
    look.close();
    clock += 2000;
    expect(await codeOf(keyring.open({ tenantId: other }, ref('d'), sealed))).toBe('KEK_MISSING');
    expect(keyring.kekHealthy()).toBe(true);
  });

  it('the token vanishing while running: cached data keys serve for the cache lifetime, then KEK_UNAVAILABLE and unhealthy; back when it returns', async () => {
    const keyring = await open('kek', 60_000);
    const sealed = await keyring.seal({ tenantId: tenant }, ref('o'), 'secret o');
    await rename(hsm.tokenDir, `${hsm.tokenDir}.away`);
    try {
      expect((await keyring.open({ tenantId: tenant }, ref('o'), sealed)).toString()).toBe('secret o');
      clock += 61_000;
      expect(await codeOf(keyring.open({ tenantId: tenant }, ref('o'), sealed))).toBe('KEK_UNAVAILABLE');
      expect(keyring.kekHealthy()).toBe(false);
    } finally {
      await rename(`${hsm.tokenDir}.away`, hsm.tokenDir);
    }
    expect((await keyring.open({ tenantId: tenant }, ref('o'), sealed)).toString()).toBe('secret o');
    expect(keyring.kekHealthy()).toBe(true);
  });
});
