/**
 * The gateway's typed error. It is an `AppError`, so the one error handler in src/server renders it
 * like any other; the gateway routes render it in the vendor's shape (src/gateway/vendor-errors.ts).
 */
import { AppError, registerErrorCodes } from '../server/errors.ts';
import { GATEWAY_ERROR_CODES, type GatewayErrorCode } from './error-codes.ts';

// Registering here (idempotent: same codes, same statuses) means a GatewayError can be built even
// before the gateway feature is listed; the feature declares the same map for the docs.
registerErrorCodes(GATEWAY_ERROR_CODES);

/**
 * A gateway failure with a stable code. The message is shown to clients for 4xx only and must never
 * carry a vendor key, an upstream host or address, or an upstream body.
 * @example throw new GatewayError('UPSTREAM_TIMEOUT', undefined, { cause: err })
 */
export class GatewayError extends AppError {
  override name = 'GatewayError';
  declare readonly code: GatewayErrorCode;

  constructor(code: GatewayErrorCode, message?: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    super(code, message, options);
  }
}

/** True when `err` is a GatewayError with one of `codes` (any code when none are given). */
export function isGatewayError(err: unknown, ...codes: GatewayErrorCode[]): err is GatewayError {
  return err instanceof GatewayError && (codes.length === 0 || codes.includes(err.code));
}
