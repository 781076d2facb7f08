/**
 * A local server answering AWS KMS's Encrypt, Decrypt and GenerateDataKey in the shape the KMS API
 * reference documents (AWS JSON 1.1: `X-Amz-Target: TrentService.<Op>`,
 * `application/x-amz-json-1.1`, base64 blobs, errors as `{"__type", "message"}` with HTTP 400). It
 * checks every request's SigV4 signature and keeps its keys to itself (AES-256-GCM with the
 * EncryptionContext as associated data, as KMS binds it). No AWS KMS can run here: the adapter is
 * tested at this HTTP edge.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createAwsKmsHttpClient, sigV4, type AwsCredentials } from '../../src/crypto/kms-client.ts';
import { createKmsKekSource, type RemoteKekSource } from '../../src/crypto/kms-kek.ts';

export const CREDS: AwsCredentials = { accessKeyId: 'AKIDGATEHOUSETEST', secretAccessKey: ['test', 'secret', 'for', 'the', 'local', 'kms'].join('/') };
export const REGION = 'eu-west-1';
export const arn = (n: number): string => `arn:aws:kms:${REGION}:111122223333:key/00000000-0000-0000-0000-00000000000${n}`;

/** A local server in the documented KMS shape. */
export function fakeKms() {
  const keys = new Map<string, { aes: Buffer; state: 'Enabled' | 'Disabled' }>([1, 2, 3].map((n) => [arn(n), { aes: randomBytes(32), state: 'Enabled' as const }]));
  const seen: { target: string; contentType: string; body: Record<string, unknown> }[] = [];
  const ctxAad = (ctx: unknown): Buffer => Buffer.from(JSON.stringify(Object.entries((ctx ?? {}) as Record<string, string>).sort()), 'utf8');
  const seal = (keyId: string, plaintext: Buffer, ctx: unknown): string => {
    const nonce = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', keys.get(keyId)!.aes, nonce).setAAD(ctxAad(ctx));
    const body = Buffer.concat([c.update(plaintext), c.final(), c.getAuthTag()]);
    const id = Buffer.from(keyId, 'utf8');
    return Buffer.concat([Buffer.from([id.length >> 8, id.length & 255]), id, nonce, body]).toString('base64');
  };
  const fail = (status: number, type: string, message: string) => ({ status, json: { __type: type, message } });

  function answer(req: IncomingMessage, raw: string): { status: number; json: unknown } {
    const target = String(req.headers['x-amz-target'] ?? '');
    if (req.headers['content-type'] !== 'application/x-amz-json-1.1') return fail(400, 'SerializationException', 'bad content type');
    const headers: Record<string, string> = {};
    for (const name of ['content-type', 'host', 'x-amz-date', 'x-amz-target', 'x-amz-security-token']) if (req.headers[name] !== undefined) headers[name] = String(req.headers[name]);
    const expected = sigV4({ method: 'POST', path: '/', query: '', headers, body: raw, region: REGION, service: 'kms', credentials: CREDS });
    if (req.headers.authorization !== expected) return fail(400, 'InvalidSignatureException', 'The request signature we calculated does not match');
    const body = JSON.parse(raw) as Record<string, unknown>;
    seen.push({ target, contentType: String(req.headers['content-type']), body });
    const keyId = String(body.KeyId ?? '');
    const key = keys.get(keyId);
    if (!key) return fail(400, 'NotFoundException', `Key '${keyId}' does not exist`);
    if (key.state !== 'Enabled') return fail(400, 'DisabledException', `${keyId} is disabled.`);
    switch (target) {
      case 'TrentService.Encrypt':
        return { status: 200, json: { CiphertextBlob: seal(keyId, Buffer.from(String(body.Plaintext), 'base64'), body.EncryptionContext), KeyId: keyId, EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' } };
      case 'TrentService.GenerateDataKey': {
        if (body.KeySpec !== 'AES_256') return fail(400, 'ValidationException', 'KeySpec');
        const dk = randomBytes(32);
        return { status: 200, json: { CiphertextBlob: seal(keyId, dk, body.EncryptionContext), Plaintext: dk.toString('base64'), KeyId: keyId } };
      }
      case 'TrentService.Decrypt': {
        const blob = Buffer.from(String(body.CiphertextBlob), 'base64');
        const idLen = (blob[0]! << 8) | blob[1]!;
        const blobKey = blob.subarray(2, 2 + idLen).toString('utf8');
        if (blobKey !== keyId) return fail(400, 'IncorrectKeyException', 'The key ID in the request does not identify a KMS key that can perform this operation.');
        try {
          const rest = blob.subarray(2 + idLen);
          const d = createDecipheriv('aes-256-gcm', key.aes, rest.subarray(0, 12)).setAAD(ctxAad(body.EncryptionContext));
          d.setAuthTag(rest.subarray(rest.length - 16));
          const plain = Buffer.concat([d.update(rest.subarray(12, rest.length - 16)), d.final()]);
          return { status: 200, json: { KeyId: keyId, Plaintext: plain.toString('base64'), EncryptionAlgorithm: 'SYMMETRIC_DEFAULT' } };
        } catch {
          return fail(400, 'InvalidCiphertextException', '');
        }
      }
      default:
        return fail(400, 'UnknownOperationException', '');
    }
  }

  let server: Server | undefined;
  let port = 0;
  const listen = async (): Promise<void> => {
    server = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString('utf8')));
      req.on('end', () => {
        const { status, json } = answer(req, raw);
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1' }).end(JSON.stringify(json));
      });
    });
    await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    port = (server!.address() as AddressInfo).port;
  };
  return {
    keys,
    seen,
    listen,
    stop: () => new Promise<void>((r) => (server ? server.close(() => r()) : r())),
    url: () => `http://127.0.0.1:${port}`,
  };
}


export type FakeKms = ReturnType<typeof fakeKms>;

/** A KMS KEK source on `kms` with versions mapped to its keys (`{ 1: arn(1) }`). */
export function kmsSource(kms: FakeKms, keys: Record<number, string>, credentials: AwsCredentials = CREDS): RemoteKekSource {
  return createKmsKekSource({ client: createAwsKmsHttpClient({ endpoint: kms.url(), region: REGION, credentials, timeoutMs: 2000 }), keys });
}
