/**
 * The keyring with its KEKs in a KMS (DATA-1), on PGlite, against the local server in the KMS's
 * documented shape (test/support/fake-kms.ts): data keys are made by GenerateDataKey and opened by
 * Decrypt (the node never holds a KEK); rotation to a new KMS key through the existing rewrap;
 * `keys status` says where each KEK lives; an outage serves already-unwrapped data keys for the
 * cache lifetime only, then KEK_UNAVAILABLE (503), with the keyring unhealthy (readiness), and no
 * fallback to anything local.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../../src/crypto/errors.ts';
import { createKeyring, type Keyring } from '../../src/keyring/keyring.ts';
import type { Db } from '../../src/store/db-types.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import type { Kv } from '../../src/store/kv/types.ts';
import { createPgliteDb } from '../../src/store/pglite.ts';
import { arn, fakeKms, kmsSource } from '../support/fake-kms.ts';

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (err: unknown) => (err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`),
  );

describe('the keyring with KEKs in a KMS', () => {
  const kms = fakeKms();
  let db: Db;
  let kv: Kv;
  let clock = Date.now();
  const opened: Keyring[] = [];
  const tenant = randomUUID();
  const ref = (rowId: string) => ({ table: 'notes', column: 'body', rowId });
  const open = async (keys: Record<number, string>, cacheTtlMs = 60_000): Promise<Keyring> => {
    const keyring = await createKeyring({ db, kv, source: kmsSource(kms, keys), cacheTtlMs, now: () => clock });
    opened.push(keyring);
    return keyring;
  };

  beforeAll(async () => {
    await kms.listen();
    db = await createPgliteDb({ dataDir: undefined });
    await db.migrate();
    kv = createMemoryKv();
    await db.asOwner((tx) => tx.query("insert into tenants (id, kind) values ($1, 'org')", [tenant]));
  });
  afterAll(async () => {
    for (const k of opened) await k.close();
    await kv?.close();
    await db?.close();
    await kms.stop();
  });

  it('seals and opens with data keys made by GenerateDataKey and opened by Decrypt; keys status names the KMS key', async () => {
    const keyring = await open({ 1: arn(1) });
    const sealed = await keyring.seal({ tenantId: tenant }, ref('a'), 'secret a');
    expect((await keyring.open({ tenantId: tenant }, ref('a'), sealed)).toString()).toBe('secret a');
    expect(kms.seen.some((s) => s.target === 'TrentService.GenerateDataKey' && s.body.KeyId === arn(1))).toBe(true);
    const fresh = await open({ 1: arn(1) });
    expect((await fresh.open({ tenantId: tenant }, ref('a'), sealed)).toString()).toBe('secret a');
    expect(kms.seen.some((s) => s.target === 'TrentService.Decrypt' && s.body.KeyId === arn(1))).toBe(true);
    const status = await keyring.status();
    expect(status.keks).toEqual([expect.objectContaining({ version: 1, primary: true, location: `aws-kms ${arn(1)}` })]);
  });

  it('rotation: a new KMS key as version 2, the rewrap moves every data key, and version 1 can then be retired', async () => {
    const v1 = await open({ 1: arn(1) });
    const sealed = await v1.seal({ tenantId: tenant }, ref('b'), 'secret b');
    const both = await open({ 1: arn(1), 2: arn(2) });
    expect(both.primaryKekVersion()).toBe(2);
    expect(await both.rewrapAll()).toBeGreaterThan(0);
    expect((await both.status()).keks.find((k) => k.version === 1)?.wrapsDeks).toBe(0);
    const only2 = await open({ 2: arn(2) });
    expect((await only2.open({ tenantId: tenant }, ref('b'), sealed)).toString()).toBe('secret b');
  });

  it('a KMS outage: cached data keys serve for the cache lifetime, then KEK_UNAVAILABLE and unhealthy; never a local fallback; back when the KMS is', async () => {
    const keyring = await open({ 2: arn(2) }, 30_000);
    const sealed = await keyring.seal({ tenantId: tenant }, ref('c'), 'secret c');
    expect((await keyring.open({ tenantId: tenant }, ref('c'), sealed)).toString()).toBe('secret c');
    await kms.stop();
    try {
      clock += 29_000;
      expect((await keyring.open({ tenantId: tenant }, ref('c'), sealed)).toString()).toBe('secret c');
      clock += 2_000;
      expect(await codeOf(keyring.open({ tenantId: tenant }, ref('c'), sealed))).toBe('KEK_UNAVAILABLE');
      expect(keyring.kekHealthy()).toBe(false);
    } finally {
      await kms.listen();
    }
    expect((await keyring.open({ tenantId: tenant }, ref('c'), sealed)).toString()).toBe('secret c');
    expect(keyring.kekHealthy()).toBe(true);
  });

  it('a key deleted (disabled) in the KMS: its data keys cannot be opened (KEK_MISSING), nothing else is tried', async () => {
    const keyring = await open({ 2: arn(2) }, 1);
    const sealed = await keyring.seal({ tenantId: tenant }, ref('d'), 'secret d');
    kms.keys.get(arn(2))!.state = 'Disabled';
    try {
      clock += 10;
      expect(await codeOf(keyring.open({ tenantId: tenant }, ref('d'), sealed))).toBe('KEK_MISSING');
    } finally {
      kms.keys.get(arn(2))!.state = 'Enabled';
    }
  });
});
