/**
 * Key-encryption keys that never leave a KMS (DATA-1): the remote counterpart of `KekSource`
 * (kek-source.ts). A file or environment source hands the keyring KEK bytes; this one cannot, so
 * it wraps and unwraps data keys itself by asking the KMS: GenerateDataKey for a new DEK under the
 * primary version, Encrypt to rewrap a DEK under a new version (rotation), Decrypt to unwrap.
 *
 * Versions: the operator maps each KEK version (the uint32 in envelope headers) to a KMS key id
 * (`{ 1: "arn:aws:kms:...:key/..." }`); the highest is the primary. Rotation = create a new KMS key,
 * add it as the next version, restart; the existing resumable rewrap job moves DEKs over.
 *
 * Binding: every wrapped DEK carries an EncryptionContext `{ "gatehouse:dek": sha256(aad) }` (the
 * keyring's DEK aad names the DEK id, tenant, subject and version), and Decrypt pins the KeyId: a
 * wrapped DEK copied to another row, tenant or version is refused by the KMS itself.
 *
 * Faults: `check()` at start calls the KMS for every configured version (a GenerateDataKey +
 * Decrypt round trip) and refuses to start with a message naming the version and what failed
 * (unreachable, access denied, key missing or disabled); there is no fallback to any local key.
 * While running, a KMS that does not answer gives KEK_UNAVAILABLE (a 503 for the request, never a
 * refusal or a local key), and `healthy()` turns false until a call succeeds again (readiness).
 * Serving from already-unwrapped DEKs during an outage is the keyring's DEK cache, bounded by its
 * TTL.
 */
import { createHash } from 'node:crypto';
import { KEY_BYTES } from './aead.ts';
import { CryptoError } from './errors.ts';
import { KmsError, type KmsClient } from './kms-client.ts';

export const KMS_WRAPPED_PREFIX = 'k1.';

export interface RemoteKekSource {
  /** 'aws-kms', for logs, `doctor` and `keys status` (where each KEK lives). */
  readonly name: string;
  /** Where a version lives (a KMS key id), for `keys status`. */
  locationOf(version: number): string | undefined;
  /** The configured versions, ascending; the last is the primary. */
  versions(): number[];
  /** Calls the KMS for every version; throws a CryptoError naming the version and the failure. */
  check(): Promise<void>;
  /** A new 32-byte DEK under the primary version: its bytes and its wrapped form. */
  generateDek(aad: Buffer): Promise<{ version: number; key: Buffer; wrapped: string }>;
  /** Wraps an existing DEK under `version` (the rewrap job's step). */
  wrap(version: number, dek: Buffer, aad: Buffer): Promise<string>;
  unwrap(version: number, wrapped: string, aad: Buffer): Promise<Buffer>;
  /** False after a call found the KMS unreachable, until one succeeds again. */
  healthy(): boolean;
  /**
   * Sources whose versions live where the KEKs live (an HSM token) read them again here, after a
   * rotation on another node; a KMS's versions are its configuration and have none.
   */
  refresh?(): Promise<void>;
  /** Sources that can make a KEK themselves (an HSM): version max+1, made where the KEKs live. */
  addVersion?(): Promise<number>;
  /** Sources that can retire a version (an HSM): it never wraps again; unwrapping stays for old copies. */
  retire?(version: number): Promise<void>;
  /** Lets go of what the source holds open (an HSM session); the keyring's close calls it. */
  close?(): Promise<void>;
}

function contextOf(aad: Buffer): Record<string, string> {
  return { 'gatehouse:dek': createHash('sha256').update(aad).digest('base64url') };
}

/** A KMS failure as a CryptoError; never key material, only the version and the failure's type. */
function toCryptoError(err: unknown, version: number, op: string): CryptoError {
  if (!(err instanceof KmsError)) return new CryptoError('KEK_UNAVAILABLE', `KMS ${op} for key-encryption key version ${version} failed unexpectedly`);
  switch (err.type) {
    case 'InvalidCiphertextException':
    case 'IncorrectKeyException':
      return new CryptoError('DECRYPT_FAILED', `the KMS could not unwrap this data key under key-encryption key version ${version} (${err.type})`);
    case 'NotFoundException':
    case 'DisabledException':
    case 'KMSInvalidStateException':
      return new CryptoError('KEK_MISSING', `key-encryption key version ${version} is missing, disabled or pending deletion in the KMS (${err.type})`);
    case 'AccessDeniedException':
    case 'UnrecognizedClientException':
    case 'InvalidSignatureException':
    case 'IncompleteSignature':
    case 'ExpiredTokenException':
      return new CryptoError('KEK_ACCESS_DENIED', `the KMS refused this node's credentials for key-encryption key version ${version} (${err.type})`);
    default:
      return new CryptoError('KEK_UNAVAILABLE', `the KMS did not answer ${op} for key-encryption key version ${version} (${err.type})`);
  }
}

/** Whether the node cannot use the KMS at all now (not reached, or its credentials refused): readiness fails. */
const isOutage = (err: CryptoError): boolean => err.code === 'KEK_UNAVAILABLE' || err.code === 'KEK_ACCESS_DENIED';

/**
 * @example const source = createKmsKekSource({ client: createAwsKmsHttpClient({...}), keys: { 1: 'arn:aws:kms:eu-west-1:111122223333:key/...' } })
 */
export function createKmsKekSource(options: { client: KmsClient; keys: Readonly<Record<number, string>>; name?: string }): RemoteKekSource {
  const entries = Object.entries(options.keys)
    .map(([v, keyId]) => [Number(v), keyId] as const)
    .sort((a, b) => a[0] - b[0]);
  if (entries.length === 0) throw new CryptoError('KEK_MISSING', 'no KMS key is configured for any key-encryption key version');
  for (const [version, keyId] of entries) {
    if (!Number.isSafeInteger(version) || version < 1 || version > 0xffff_ffff) throw new CryptoError('KEYRING_INVALID', `KMS key version ${String(version)} is not a positive integer`);
    if (typeof keyId !== 'string' || keyId.length === 0 || keyId.length > 2048) throw new CryptoError('KEYRING_INVALID', `KMS key id of version ${version} is empty or too long`);
  }
  const keyIds = new Map(entries);
  const primary = entries[entries.length - 1]![0];
  let up = true;

  async function guarded<T>(version: number, op: string, fn: (keyId: string) => Promise<T>): Promise<T> {
    const keyId = keyIds.get(version);
    if (keyId === undefined) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not configured`);
    try {
      const result = await fn(keyId);
      up = true;
      return result;
    } catch (err) {
      const mapped = err instanceof CryptoError ? err : toCryptoError(err, version, op);
      if (isOutage(mapped)) up = false;
      throw mapped;
    }
  }

  function decodeWrapped(wrapped: string): Buffer {
    if (typeof wrapped !== 'string' || !wrapped.startsWith(KMS_WRAPPED_PREFIX)) throw new CryptoError('ENVELOPE_MALFORMED', 'the value is not a KMS-wrapped data key');
    const text = wrapped.slice(KMS_WRAPPED_PREFIX.length);
    const bytes = Buffer.from(text, 'base64url');
    if (text.length === 0 || bytes.toString('base64url') !== text) throw new CryptoError('ENVELOPE_MALFORMED', 'the value is not a KMS-wrapped data key');
    return bytes;
  }

  const source: RemoteKekSource = {
    name: options.name ?? 'aws-kms',
    locationOf: (version) => keyIds.get(version),
    versions: () => entries.map(([v]) => v),
    healthy: () => up,
    async check() {
      const probeAad = Buffer.from('gatehouse.kms.startup-check', 'utf8');
      for (const [version] of entries) {
        const key = await guarded(version, 'GenerateDataKey', async (keyId) => {
          const made = await options.client.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: contextOf(probeAad) });
          const opened = await options.client.decrypt({ KeyId: keyId, CiphertextBlob: made.CiphertextBlob, EncryptionContext: contextOf(probeAad) });
          if (!Buffer.from(opened.Plaintext).equals(Buffer.from(made.Plaintext))) throw new CryptoError('KEYRING_MISMATCH', `KMS key of version ${version} did not give back what it wrapped`);
          return Buffer.from(made.Plaintext);
        });
        key.fill(0);
      }
    },
    async generateDek(aad) {
      return guarded(primary, 'GenerateDataKey', async (keyId) => {
        const made = await options.client.generateDataKey({ KeyId: keyId, KeySpec: 'AES_256', EncryptionContext: contextOf(aad) });
        const key = Buffer.from(made.Plaintext);
        if (key.length !== KEY_BYTES) throw new CryptoError('KEK_UNAVAILABLE', `the KMS gave a data key of ${key.length} bytes`);
        return { version: primary, key, wrapped: KMS_WRAPPED_PREFIX + Buffer.from(made.CiphertextBlob).toString('base64url') };
      });
    },
    async wrap(version, dek, aad) {
      return guarded(version, 'Encrypt', async (keyId) => {
        const out = await options.client.encrypt({ KeyId: keyId, Plaintext: dek, EncryptionContext: contextOf(aad) });
        return KMS_WRAPPED_PREFIX + Buffer.from(out.CiphertextBlob).toString('base64url');
      });
    },
    async unwrap(version, wrapped, aad) {
      const blob = decodeWrapped(wrapped);
      return guarded(version, 'Decrypt', async (keyId) => {
        const out = await options.client.decrypt({ KeyId: keyId, CiphertextBlob: blob, EncryptionContext: contextOf(aad) });
        return Buffer.from(out.Plaintext);
      });
    },
  };
  return source;
}
