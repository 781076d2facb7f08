/** Random identifiers and tokens from the operating system's CSPRNG (node:crypto). */
import { randomBytes, randomUUID } from 'node:crypto';

/** Upper bound on `randomToken` sizes: a token is an identifier, not a bulk buffer. */
const MAX_TOKEN_BYTES = 1024;

/**
 * `bytes` random bytes as base64url without padding (32 bytes -> 43 characters, 256 bits).
 * @example randomToken() // 'Zt3q...'
 */
export function randomToken(bytes = 32): string {
  if (!Number.isInteger(bytes) || bytes < 1 || bytes > MAX_TOKEN_BYTES) {
    throw new TypeError(`randomToken: bytes must be an integer from 1 to ${MAX_TOKEN_BYTES}`);
  }
  return randomBytes(bytes).toString('base64url');
}

/** A random (version 4) UUID, lowercase. */
export function randomUuid(): string {
  return randomUUID();
}
