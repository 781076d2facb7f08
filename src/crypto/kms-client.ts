/**
 * A minimal AWS KMS client (DATA-1): Encrypt, Decrypt and GenerateDataKey over the AWS JSON 1.1
 * protocol (`POST /`, `Content-Type: application/x-amz-json-1.1`, `X-Amz-Target:
 * TrentService.<Operation>`, binary fields as base64 in JSON; errors as HTTP 4xx/5xx with
 * `{"__type": "...Exception", "message": "..."}`), signed with Signature Version 4, as the KMS API
 * reference documents them. The `KmsClient` interface has the shape of the official SDK's commands
 * (`@aws-sdk/client-kms` EncryptCommand / DecryptCommand / GenerateDataKeyCommand inputs and
 * outputs), so the SDK can stand behind it once it is a dependency (NEED_DEP.txt).
 *
 * Never logs or returns key material in errors: a failure names the operation and the service's
 * error type only.
 */
import { createHash, createHmac } from 'node:crypto';

export type EncryptionContext = Record<string, string>;

export interface KmsClient {
  encrypt(input: { KeyId: string; Plaintext: Uint8Array; EncryptionContext?: EncryptionContext }): Promise<{ CiphertextBlob: Uint8Array; KeyId: string }>;
  decrypt(input: { KeyId: string; CiphertextBlob: Uint8Array; EncryptionContext?: EncryptionContext }): Promise<{ Plaintext: Uint8Array; KeyId: string }>;
  generateDataKey(input: { KeyId: string; KeySpec: 'AES_256'; EncryptionContext?: EncryptionContext }): Promise<{ Plaintext: Uint8Array; CiphertextBlob: Uint8Array; KeyId: string }>;
}

/**
 * A failure of a KMS call: `type` is the service's error type (e.g. `NotFoundException`,
 * `AccessDeniedException`, `InvalidCiphertextException`, `DisabledException`), or `NetworkError`
 * / `TimeoutError` when no answer came.
 */
export class KmsError extends Error {
  override name = 'KmsError';
  readonly type: string;
  readonly status: number | null;
  constructor(type: string, status: number | null, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.type = type;
    this.status = status;
  }
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

const sha256hex = (data: string | Uint8Array): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/**
 * Signature Version 4 for one request: returns the `authorization` header value. `headers` must
 * hold every header to sign (lowercase names), `host` and `x-amz-date` included.
 * @example sigV4({ method: 'POST', path: '/', query: '', headers, body, region: 'eu-west-1', service: 'kms', credentials })
 */
export function sigV4(r: { method: string; path: string; query: string; headers: Record<string, string>; body: string; region: string; service: string; credentials: AwsCredentials }): string {
  const amzDate = r.headers['x-amz-date'];
  if (!amzDate || !/^\d{8}T\d{6}Z$/.test(amzDate)) throw new TypeError('sigV4: x-amz-date must be YYYYMMDDTHHMMSSZ');
  const names = Object.keys(r.headers).map((n) => n.toLowerCase()).sort();
  const canonicalHeaders = names.map((n) => `${n}:${String(r.headers[n]).trim().replace(/\s+/g, ' ')}\n`).join('');
  const signedHeaders = names.join(';');
  const canonicalRequest = [r.method, r.path, r.query, canonicalHeaders, signedHeaders, sha256hex(r.body)].join('\n');
  const date = amzDate.slice(0, 8);
  const scope = `${date}/${r.region}/${r.service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256hex(canonicalRequest)].join('\n');
  const kSigning = hmac(hmac(hmac(hmac(`AWS4${r.credentials.secretAccessKey}`, date), r.region), r.service), 'aws4_request');
  const signature = createHmac('sha256', kSigning).update(stringToSign, 'utf8').digest('hex');
  return `AWS4-HMAC-SHA256 Credential=${r.credentials.accessKeyId}/${scope}, SignedHeaders=${signedHeaders}, Signature=${signature}`;
}

export interface AwsKmsHttpOptions {
  /** e.g. https://kms.eu-west-1.amazonaws.com (or a local endpoint in tests). */
  endpoint: string;
  region: string;
  credentials: AwsCredentials;
  /** Longest wait for one call, connect included. */
  timeoutMs: number;
  now?: () => number;
  fetch?: typeof fetch;
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
function unb64(value: unknown, field: string, op: string): Uint8Array {
  if (typeof value !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(value)) throw new KmsError('InvalidResponse', null, `KMS ${op}: ${field} is not base64`);
  return Buffer.from(value, 'base64');
}

/**
 * KMS over HTTPS with SigV4, no SDK.
 * @example const kms = createAwsKmsHttpClient({ endpoint: 'https://kms.eu-west-1.amazonaws.com', region: 'eu-west-1', credentials, timeoutMs: 2000 })
 */
export function createAwsKmsHttpClient(options: AwsKmsHttpOptions): KmsClient {
  const url = new URL(options.endpoint);
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;

  async function call(op: 'Encrypt' | 'Decrypt' | 'GenerateDataKey', input: Record<string, unknown>): Promise<Record<string, unknown>> {
    const body = JSON.stringify(input);
    const amzDate = new Date(now()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}/, '');
    const headers: Record<string, string> = {
      'content-type': 'application/x-amz-json-1.1',
      host: url.host,
      'x-amz-date': amzDate,
      'x-amz-target': `TrentService.${op}`,
      ...(options.credentials.sessionToken ? { 'x-amz-security-token': options.credentials.sessionToken } : {}),
    };
    const authorization = sigV4({ method: 'POST', path: '/', query: '', headers, body, region: options.region, service: 'kms', credentials: options.credentials });
    let res: Response;
    try {
      res = await doFetch(new URL('/', url), { method: 'POST', headers: { ...headers, authorization }, body, signal: AbortSignal.timeout(options.timeoutMs), redirect: 'error' });
    } catch (err) {
      const timeout = (err as { name?: string }).name === 'TimeoutError';
      throw new KmsError(timeout ? 'TimeoutError' : 'NetworkError', null, `KMS ${op}: ${timeout ? 'no answer in time' : 'could not connect'}`, { cause: err });
    }
    const text = await res.text().catch(() => '');
    let json: Record<string, unknown> = {};
    try {
      const parsed: unknown = text === '' ? {} : JSON.parse(text);
      if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
    } catch {
      // Not JSON: a proxy's page or a broken answer; only the status is kept below.
    }
    if (!res.ok) {
      const rawType = typeof json.__type === 'string' ? json.__type : `Http${res.status}`;
      const type = rawType.includes('#') ? rawType.slice(rawType.lastIndexOf('#') + 1) : rawType;
      throw new KmsError(type, res.status, `KMS ${op} failed: ${type} (HTTP ${res.status})`);
    }
    return json;
  }

  const keyIdOf = (json: Record<string, unknown>, op: string): string => {
    if (typeof json.KeyId !== 'string') throw new KmsError('InvalidResponse', null, `KMS ${op}: no KeyId in the answer`);
    return json.KeyId;
  };

  return {
    async encrypt(input) {
      const json = await call('Encrypt', { KeyId: input.KeyId, Plaintext: b64(input.Plaintext), ...(input.EncryptionContext ? { EncryptionContext: input.EncryptionContext } : {}) });
      return { CiphertextBlob: unb64(json.CiphertextBlob, 'CiphertextBlob', 'Encrypt'), KeyId: keyIdOf(json, 'Encrypt') };
    },
    async decrypt(input) {
      const json = await call('Decrypt', { KeyId: input.KeyId, CiphertextBlob: b64(input.CiphertextBlob), ...(input.EncryptionContext ? { EncryptionContext: input.EncryptionContext } : {}) });
      return { Plaintext: unb64(json.Plaintext, 'Plaintext', 'Decrypt'), KeyId: keyIdOf(json, 'Decrypt') };
    },
    async generateDataKey(input) {
      const json = await call('GenerateDataKey', { KeyId: input.KeyId, KeySpec: input.KeySpec, ...(input.EncryptionContext ? { EncryptionContext: input.EncryptionContext } : {}) });
      return { Plaintext: unb64(json.Plaintext, 'Plaintext', 'GenerateDataKey'), CiphertextBlob: unb64(json.CiphertextBlob, 'CiphertextBlob', 'GenerateDataKey'), KeyId: keyIdOf(json, 'GenerateDataKey') };
    },
  };
}
