/**
 * The console's typed API client: openapi-fetch over the types generated from the node's OpenAPI
 * document (schema.d.ts, `npm run docs`). The console signs in in cookie mode: the session lives
 * in __Host- cookies the page's script cannot read, and every unsafe request carries the CSRF
 * token of the readable __Host-gh_csrf cookie in X-CSRF-Token, as the API requires.
 *
 * An expired access token is refreshed once (POST /v1/auth/refresh with the refresh cookie) and
 * the request tried again.
 */
import createClient from 'openapi-fetch';
import type { paths } from './schema.d.ts';

const CSRF_COOKIE = '__Host-gh_csrf';
const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The CSRF token the API set with the session cookies ('' when signed out). */
export function csrfToken(): string {
  const entry = document.cookie.split('; ').find((c) => c.startsWith(`${CSRF_COOKIE}=`));
  return entry ? decodeURIComponent(entry.slice(CSRF_COOKIE.length + 1)) : '';
}

function withCsrf(request: Request): Request {
  if (SAFE.has(request.method)) return request;
  const headers = new Headers(request.headers);
  headers.set('x-csrf-token', csrfToken());
  return new Request(request, { headers });
}

let refreshing: Promise<boolean> | undefined;

/** One refresh at a time, shared by every request that found its access token expired. */
function refreshSession(): Promise<boolean> {
  refreshing ??= fetch('/v1/auth/refresh', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': csrfToken() },
    body: '{}',
  })
    .then((res) => res.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = undefined;
    });
  return refreshing;
}

/** fetch with CSRF and one refresh-and-retry when the access token has expired. */
async function consoleFetch(input: Request): Promise<Response> {
  const retry = input.clone();
  const res = await fetch(withCsrf(input));
  if (res.status !== 401 || new URL(input.url).pathname.startsWith('/v1/auth/')) return res;
  if (!(await refreshSession())) return res;
  return fetch(withCsrf(retry));
}

export const api = createClient<paths>({ baseUrl: '', credentials: 'same-origin', fetch: consoleFetch });

/** A refusal of the API, with its Gatehouse error code, message and request id. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly requestId: string | undefined,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface Envelope {
  error?: { code?: unknown; message?: unknown; requestId?: unknown };
}

/** Turns an error body of the API (any shape) into an ApiError. */
export function toApiError(status: number, body: unknown): ApiError {
  const e = (body as Envelope | undefined)?.error;
  const code = typeof e?.code === 'string' ? e.code : `HTTP_${status}`;
  const message = typeof e?.message === 'string' ? e.message : 'The request failed.';
  return new ApiError(status, code, message, typeof e?.requestId === 'string' ? e.requestId : undefined);
}

/**
 * The data of an openapi-fetch result, or throws its ApiError: what react-query's functions return.
 * @example const me = await unwrap(api.GET('/v1/me'));
 */
export async function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) throw toApiError(response.status, error);
  return data as T;
}
