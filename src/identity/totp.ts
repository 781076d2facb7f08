/**
 * TOTP (RFC 6238) over otpauth: secret generation, the otpauth:// URI authenticator apps read,
 * and the one verification function the server uses (tested against the RFC's vectors). Codes
 * are checked against the server's clock only, never a time the client sends.
 */
import { randomBytes } from 'node:crypto';
import { Secret, TOTP } from 'otpauth';

export type TotpAlgorithm = 'SHA1' | 'SHA256' | 'SHA512';

export interface TotpParams {
  algorithm: TotpAlgorithm;
  digits: number;
  /** Seconds per time step. */
  period: number;
}

/**
 * What every authenticator app understands: SHA-1, 6 digits, 30 s. Apps that read other values
 * from the URI are too few to rely on, and HMAC-SHA-1 is not weakened by SHA-1's collisions.
 */
export const TOTP_DEFAULTS: Readonly<TotpParams> = Object.freeze({ algorithm: 'SHA1', digits: 6, period: 30 });

/** 160 bits, the HMAC-SHA-1 block of RFC 4226's recommendation. */
export const TOTP_SECRET_BYTES = 20;

/** A new TOTP secret from the CSPRNG. */
export function generateTotpSecret(): Buffer {
  return randomBytes(TOTP_SECRET_BYTES);
}

function secretOf(bytes: Uint8Array): Secret {
  // A copy, so otpauth never holds a view on a buffer the caller zeroes afterwards.
  return new Secret({ buffer: Uint8Array.from(bytes).buffer });
}

/**
 * The otpauth:// URI of a secret, for a QR code or manual entry.
 * @example totpUri(secret, { issuer: 'Gatehouse', label: 'ada@example.com' })
 */
export function totpUri(secret: Uint8Array, options: { issuer: string; label: string }, params: TotpParams = TOTP_DEFAULTS): string {
  return new TOTP({ issuer: options.issuer, label: options.label, secret: secretOf(secret), ...params }).toString();
}

/** The time step an instant falls in. */
export function totpStep(atMs: number, period: number = TOTP_DEFAULTS.period): number {
  return TOTP.counter({ period, timestamp: atMs });
}

export interface MatchTotpOptions {
  /** The server's time, in milliseconds. */
  atMs: number;
  /** Steps accepted either side of the current one (clock drift, a code typed at a step's end). */
  window: number;
  params?: TotpParams;
}

/**
 * The time step a code belongs to, searched within ±window steps of atMs, or null when the code
 * matches none. Comparison is constant-time (otpauth). Replay is the caller's part: accept the
 * step only when it is later than the last one accepted for the factor.
 * @example const step = matchTotp(secret, '123456', { atMs: now(), window: 1 })
 */
export function matchTotp(secret: Uint8Array, code: string, options: MatchTotpOptions): number | null {
  const params = options.params ?? TOTP_DEFAULTS;
  const delta = TOTP.validate({ token: code, secret: secretOf(secret), ...params, timestamp: options.atMs, window: options.window });
  return delta === null ? null : totpStep(options.atMs, params.period) + delta;
}
