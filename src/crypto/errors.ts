/**
 * The one error type of the crypto module. Callers branch on `code`, never on the message.
 * Messages name what failed (a path, an entry index, a key version) and never carry key
 * material, plaintext or the text of a key file.
 */

export type CryptoErrorCode =
  | 'ENVELOPE_MALFORMED'
  | 'ENVELOPE_VERSION_UNSUPPORTED'
  | 'DECRYPT_FAILED'
  | 'KEY_UNKNOWN'
  | 'KEY_DESTROYED'
  | 'KEK_MISSING'
  | 'KEY_RETIRED'
  | 'KEYRING_INVALID'
  | 'KEY_FILE_INSECURE'
  /** The key-encryption keys do not open the data keys the database holds (another database's key file). */
  | 'KEYRING_MISMATCH'
  /** A remote key service (KMS, HSM) could not be reached or did not answer: nothing was decided (a 503, never a refusal). */
  | 'KEK_UNAVAILABLE'
  /** A remote key service refused the node's credentials (a wrong PIN, a denied KMS policy). */
  | 'KEK_ACCESS_DENIED';

/**
 * A refusal from the crypto module.
 * @example throw new CryptoError('DECRYPT_FAILED', 'the value could not be authenticated')
 */
export class CryptoError extends Error {
  override name = 'CryptoError';
  readonly code: CryptoErrorCode;

  constructor(code: CryptoErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}
