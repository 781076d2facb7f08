/**
 * The one error path of the HTTP server (app.ts): every error, ours or the framework's, becomes
 * the error envelope with a stable code; 404 and 405 for unknown paths and methods.
 */
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import type FindMyWay from 'find-my-way';
import { CryptoError } from '../crypto/errors.ts';
import { isDependencyUnavailable } from '../store/unavailable.ts';
import { AppError, errorBody, errorCodeInfo } from './errors.ts';

/**
 * Seconds a client is asked to wait when a dependency cannot answer: long enough for a
 * restarting PostgreSQL or Redis, short enough that clients come back soon after.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

/** Why a raw framework error happened, as one of our codes (never the framework's own text). */
export function mapFrameworkError(err: FastifyError): { code: string; message?: string } {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { code: 'BODY_TOO_LARGE' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
      return { code: 'UNSUPPORTED_MEDIA_TYPE' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { code: 'EMPTY_JSON_BODY' };
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { code: 'BAD_REQUEST', message: 'Content-Length does not match the body.' };
    case 'FST_ERR_BAD_URL':
      return { code: 'BAD_REQUEST', message: 'The URL is malformed.' };
    default:
      if (err instanceof SyntaxError) return { code: 'INVALID_JSON' };
      if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
        if (err.statusCode === 413) return { code: 'BODY_TOO_LARGE' };
        if (err.statusCode === 415) return { code: 'UNSUPPORTED_MEDIA_TYPE' };
        return { code: 'BAD_REQUEST' };
      }
      return { code: 'INTERNAL' };
  }
}

function validationMessage(err: {
  validation: { keyword?: string; instancePath?: string; message?: string; params?: unknown }[];
  validationContext?: string;
}): string {
  const where = err.validationContext ?? 'body';
  const parts = err.validation.slice(0, 5).map((v) => {
    const path = (v.instancePath ?? '').replace(/^\//, '').replace(/\//g, '.');
    const keys = (v.params as { keys?: unknown } | undefined)?.keys;
    if (v.keyword === 'unrecognized_keys' && Array.isArray(keys)) {
      return keys.map((k) => `${where}${path ? '.' + path : ''}.${String(k).slice(0, 64)}: unknown field`).join('; ');
    }
    const msg = (v.message ?? 'invalid').replace(/^Invalid input: /, '');
    return `${where}${path ? '.' + path : ''}: ${msg}`;
  });
  return parts.join('; ').slice(0, 500);
}

/** Sends the error envelope (or the route's own error format) for a code. */
export function sendError(request: FastifyRequest, reply: FastifyReply, code: string, message?: string, headers?: Record<string, string>): FastifyReply {
  const info = errorCodeInfo(code) ?? errorCodeInfo('INTERNAL');
  const status = info?.status ?? 500;
  // 5xx bodies never carry anything specific to the failure.
  const text = status >= 500 ? (info?.message ?? 'Internal error.') : (message ?? info?.message ?? 'Error.');
  // A 503 always says when to come back (RFC 9110 §10.2.3), whoever threw it.
  if (status === 503 && headers?.['retry-after'] === undefined) headers = { ...headers, 'retry-after': String(UNAVAILABLE_RETRY_AFTER_SECONDS) };
  if (headers) reply.headers(headers);
  // A route whose clients are another API's SDKs gets the same error in that API's shape.
  const format = request.routeOptions?.config?.gatehouse?.errorFormat;
  if (format) {
    const rendered = format.render({ status, code, message: text, requestId: request.id, headers: headers ?? {} });
    if (rendered.headers) reply.headers(rendered.headers);
    return reply.code(status).type('application/json; charset=utf-8').send(rendered.body);
  }
  return reply.code(status).type('application/json; charset=utf-8').send(errorBody(code, text, request.id));
}

/** The error handler and the not-found handler (405 with Allow when the path has other methods). */
export function registerErrorPath(app: FastifyInstance, methodRouter: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>): void {
  app.setErrorHandler((err: FastifyError, request, reply) => {
    if (err instanceof AppError) {
      if (err.status >= 500) request.log.error({ err, code: err.code }, 'request failed');
      return sendError(request, reply, err.code, err.message, err.headers);
    }
    if (hasZodFastifySchemaValidationErrors(err)) {
      return sendError(request, reply, 'VALIDATION_FAILED', validationMessage(err));
    }
    // A store (or the KMS holding the KEKs) that could not answer says nothing about the credential or the input: 503, never 401/500.
    if (isDependencyUnavailable(err) || (err instanceof CryptoError && (err.code === 'KEK_UNAVAILABLE' || err.code === 'KEK_ACCESS_DENIED'))) {
      request.log.error({ err, route: request.routeOptions.url }, 'a dependency is unavailable');
      return sendError(request, reply, 'SERVICE_UNAVAILABLE');
    }
    if (isResponseSerializationError(err)) {
      request.log.error({ err, route: request.routeOptions.url }, 'response does not match its schema');
      return sendError(request, reply, 'INTERNAL');
    }
    const mapped = mapFrameworkError(err);
    if (mapped.code === 'INTERNAL') request.log.error({ err }, 'unhandled error');
    return sendError(request, reply, mapped.code, mapped.message);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const path = request.url.split('?')[0] ?? '/';
    const allowed = (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter((m) => methodRouter.find(m, path) !== null);
    if (allowed.length > 0) {
      if (allowed.includes('GET')) allowed.push('HEAD' as never);
      return sendError(request, reply, 'METHOD_NOT_ALLOWED', undefined, { allow: allowed.join(', ') });
    }
    return sendError(request, reply, 'NOT_FOUND');
  });
}
