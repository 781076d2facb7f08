/**
 * The one error path. Domain code throws `AppError(code)`; the handler in app.ts turns any
 * thrown value into `{ error: { code, message, requestId } }` and hides everything of a 5xx.
 */
import type { ErrorCodeInfo } from './error-codes.ts';
import { CORE_ERROR_CODES } from './error-codes.ts';

/** The registry of codes: core codes plus those features declare at start. */
const registry = new Map<string, ErrorCodeInfo>(Object.entries(CORE_ERROR_CODES));

/** Registers a feature's codes; a code may not be defined twice with a different meaning. */
export function registerErrorCodes(codes: Record<string, ErrorCodeInfo>): void {
  for (const [code, info] of Object.entries(codes)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(code)) throw new Error(`error code ${code} is not UPPER_SNAKE`);
    const existing = registry.get(code);
    if (existing && existing.status !== info.status) throw new Error(`error code ${code} is registered twice`);
    registry.set(code, info);
  }
}

export function errorCodeInfo(code: string): ErrorCodeInfo | undefined {
  return registry.get(code);
}

export function allErrorCodes(): ReadonlyMap<string, ErrorCodeInfo> {
  return registry;
}

/**
 * A refusal with a stable code. The message is shown to the client, so it must never carry
 * secrets, SQL or internal paths.
 * @example throw new AppError('NOT_FOUND', 'No such organization.')
 */
export class AppError extends Error {
  override name = 'AppError';
  readonly code: string;
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(code: string, message?: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    const info = registry.get(code);
    if (!info) throw new Error(`unknown error code ${code}: declare it in error-codes.ts or the feature`);
    super(message ?? info.message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = info.status;
    this.headers = options?.headers ?? {};
  }
}

export interface ErrorBody {
  error: { code: string; message: string; requestId: string };
}

export function errorBody(code: string, message: string, requestId: string): ErrorBody {
  return { error: { code, message, requestId } };
}
