/**
 * The KMS adapter of the keyring (DATA-1), tested at the HTTP edge: no AWS KMS can run here, so a
 * local server answers Encrypt, Decrypt and GenerateDataKey in the shape the AWS KMS API reference
 * documents (AWS JSON 1.1: `X-Amz-Target: TrentService.<Op>`, `application/x-amz-json-1.1`, base64
 * blobs, errors as `{"__type", "message"}` with HTTP 400), checks every request's SigV4 signature,
 * and keeps its keys to itself (AES-256-GCM with the EncryptionContext as associated data, like
 * KMS binds it). The signer itself is checked against the AWS SigV4 test suite's `get-vanilla`
 * vector. Faults: unreachable at start, refused credentials, a deleted or disabled key, an outage
 * while running (KEK_UNAVAILABLE, readiness false, never a local fallback), and back again.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../../src/crypto/errors.ts';
import { createAwsKmsHttpClient, sigV4 } from '../../src/crypto/kms-client.ts';
import { createKmsKekSource } from '../../src/crypto/kms-kek.ts';
import { arn, CREDS, fakeKms, REGION } from '../support/fake-kms.ts';

const codeOf = async (p: Promise<unknown>): Promise<string> =>
  p.then(
    () => 'resolved',
    (err: unknown) => (err instanceof CryptoError ? err.code : `not a CryptoError: ${String(err)}`),
  );

describe('KMS adapter at the HTTP edge (AWS JSON 1.1, SigV4)', () => {
  const kms = fakeKms();
  const sourceWith = (creds = CREDS, endpoint = kms.url()) =>
    createKmsKekSource({ client: createAwsKmsHttpClient({ endpoint, region: REGION, credentials: creds, timeoutMs: 2000 }), keys: { 1: arn(1), 2: arn(2) } });

  beforeAll(async () => {
    await kms.listen();
  });
  afterAll(async () => {
    await kms.stop();
  });

  it('signs with SigV4 exactly as the AWS test suite\'s get-vanilla vector', () => {
    const auth = sigV4({
      method: 'GET',
      path: '/',
      query: '',
      headers: { host: 'example.amazonaws.com', 'x-amz-date': '20150830T123600Z' },
      body: '',
      region: 'us-east-1',
      service: 'service',
      credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' },
    });
    expect(auth).toBe('AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31');
  });

  it('round trip: a new data key from GenerateDataKey under the primary, unwrapped by Decrypt, rewrapped by Encrypt; requests in the documented shape', async () => {
    const source = sourceWith();
    await source.check();
    const aad = Buffer.from('gatehouse.dek.v1\ndek-1\ntenant-a\n\n2', 'utf8');
    const { version, key, wrapped } = await source.generateDek(aad);
    expect(version).toBe(2);
    expect(key).toHaveLength(32);
    expect(wrapped.startsWith('k1.')).toBe(true);
    expect((await source.unwrap(2, wrapped, aad)).equals(key)).toBe(true);
    const rewrapped = await source.wrap(1, key, aad);
    expect((await source.unwrap(1, rewrapped, aad)).equals(key)).toBe(true);
    const targets = new Set(kms.seen.map((s) => s.target));
    expect(targets).toEqual(new Set(['TrentService.GenerateDataKey', 'TrentService.Decrypt', 'TrentService.Encrypt']));
    const gen = kms.seen.filter((s) => s.target === 'TrentService.GenerateDataKey').at(-1)!;
    expect(gen.body).toMatchObject({ KeyId: arn(2), KeySpec: 'AES_256', EncryptionContext: { 'gatehouse:dek': expect.any(String) } });
    // Only a rewrap (Encrypt) sends a data key to the KMS; creating and opening one never does.
    expect(JSON.stringify(kms.seen.filter((s) => s.target !== 'TrentService.Encrypt'))).not.toContain(key.toString('base64'));
  });

  it('attack: a wrapped data key moved to another row (other aad) or another version is refused by the KMS (DECRYPT_FAILED)', async () => {
    const source = sourceWith();
    const aad = Buffer.from('row-a', 'utf8');
    const { wrapped } = await source.generateDek(aad);
    expect(await codeOf(source.unwrap(2, wrapped, Buffer.from('row-b', 'utf8')))).toBe('DECRYPT_FAILED');
    expect(await codeOf(source.unwrap(1, wrapped, aad))).toBe('DECRYPT_FAILED');
    expect(await codeOf(source.unwrap(2, 'w1.notkms', aad))).toBe('ENVELOPE_MALFORMED');
  });

  it('at start: refused credentials are KEK_ACCESS_DENIED, a disabled or deleted key KEK_MISSING, each naming the version', async () => {
    const wrongCreds = sourceWith({ ...CREDS, secretAccessKey: 'wrong' });
    const denied = await wrongCreds.check().catch((e: unknown) => e as CryptoError);
    expect(denied).toMatchObject({ code: 'KEK_ACCESS_DENIED' });
    expect((denied as Error).message).toContain('version 1');
    kms.keys.get(arn(2))!.state = 'Disabled';
    try {
      expect(await codeOf(sourceWith().check())).toBe('KEK_MISSING');
    } finally {
      kms.keys.get(arn(2))!.state = 'Enabled';
    }
    const deleted = createKmsKekSource({ client: createAwsKmsHttpClient({ endpoint: kms.url(), region: REGION, credentials: CREDS, timeoutMs: 2000 }), keys: { 1: arn(9) } });
    expect(await codeOf(deleted.check())).toBe('KEK_MISSING');
  });

  it('unreachable at start: check() refuses with KEK_UNAVAILABLE naming the version, and nothing falls back', async () => {
    const nowhere = await new Promise<number>((resolve) => {
      const s = createServer();
      s.listen(0, '127.0.0.1', () => {
        const p = (s.address() as AddressInfo).port;
        s.close(() => resolve(p));
      });
    });
    const source = sourceWith(CREDS, `http://127.0.0.1:${nowhere}`);
    const err = await source.check().catch((e: unknown) => e as CryptoError);
    expect(err).toMatchObject({ code: 'KEK_UNAVAILABLE' });
    expect((err as Error).message).toContain('version 1');
    expect(source.healthy()).toBe(false);
  });

  it('an outage while running: unwrap is KEK_UNAVAILABLE and healthy() false (readiness), then back to normal when the KMS answers again', async () => {
    const source = sourceWith();
    const aad = Buffer.from('row-outage', 'utf8');
    const { key, wrapped } = await source.generateDek(aad);
    await kms.stop();
    try {
      expect(await codeOf(source.unwrap(2, wrapped, aad))).toBe('KEK_UNAVAILABLE');
      expect(source.healthy()).toBe(false);
    } finally {
      await kms.listen();
    }
    expect((await source.unwrap(2, wrapped, aad)).equals(key)).toBe(true);
    expect(source.healthy()).toBe(true);
  });
});
