/**
 * Every error code Gatehouse returns, once: HTTP status and what it means.
 * docs/errors.md is generated from this list plus the codes features declare;
 * a test fails when a code is thrown anywhere without being documented.
 */
export interface ErrorCodeInfo {
  status: number;
  /** The message sent to clients when the thrower gives none. */
  message: string;
  /** What it means and what the client should do (docs). */
  doc: string;
}

export const CORE_ERROR_CODES = {
  BAD_REQUEST: { status: 400, message: 'The request is malformed.', doc: 'Generic malformed request.' },
  INVALID_JSON: { status: 400, message: 'The body is not valid JSON.', doc: 'The body could not be parsed as JSON.' },
  VALIDATION_FAILED: {
    status: 400,
    message: 'The request does not match the schema.',
    doc: 'A parameter, query field or body field is missing, has the wrong type, or is not allowed (unknown fields are refused; no string or key may contain a NUL character, U+0000). The message names the field.',
  },
  BODY_TOO_DEEP: {
    status: 400,
    message: 'The JSON body is nested too deeply.',
    doc: 'Arrays and objects nest deeper than `server.maxJsonDepth`.',
  },
  EMPTY_JSON_BODY: { status: 400, message: 'The JSON body is empty.', doc: 'Content-Type says JSON but the body is empty.' },
  UNAUTHENTICATED: {
    status: 401,
    message: 'Authentication is required.',
    doc: 'The route needs credentials (session token, API key, metrics token, cron secret or webhook signature) and none valid were sent.',
  },
  CSRF_FAILED: {
    status: 403,
    message: 'Cross-site request refused.',
    doc: 'A cookie-authenticated state-changing request without a matching X-CSRF-Token header, or from an origin that is not allowed.',
  },
  FORBIDDEN: { status: 403, message: 'You do not have permission to do this.', doc: 'Authenticated, but the principal lacks the permission or scope the route declares.' },
  NOT_FOUND: { status: 404, message: 'Not found.', doc: 'No such route, or no such resource visible to the caller.' },
  METHOD_NOT_ALLOWED: {
    status: 405,
    message: 'This method is not allowed on this path.',
    doc: 'The path exists with other methods; the `Allow` header lists them.',
  },
  BODY_TOO_LARGE: { status: 413, message: 'The body is too large.', doc: 'The body exceeds the route\'s limit (default `server.bodyLimitBytes`).' },
  UNSUPPORTED_MEDIA_TYPE: {
    status: 415,
    message: 'Unsupported Content-Type; send application/json.',
    doc: 'The body\'s Content-Type is missing or not one the route accepts.',
  },
  RATE_LIMITED: {
    status: 429,
    message: 'Too many requests; retry later.',
    doc: 'A rate limit was reached. `Retry-After` gives seconds to wait; `RateLimit` and `RateLimit-Policy` describe the limit.',
  },
  INTERNAL: {
    status: 500,
    message: 'Internal error.',
    doc: 'An unexpected failure. Nothing about it is revealed; the requestId finds it in the logs.',
  },
  SERVICE_UNAVAILABLE: {
    status: 503,
    message: 'A dependency is unavailable; retry later.',
    doc: 'Storage (PostgreSQL) or the counter store (Redis) could not answer, so nothing was decided about the credential or the request. `Retry-After` says when to retry. Which routes still answer during a Redis outage depends on `rateLimit.onStoreError` (README, "When PostgreSQL or Redis cannot answer").',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type CoreErrorCode = keyof typeof CORE_ERROR_CODES;
