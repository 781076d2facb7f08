/**
 * The raw request body on demand: a route that declares `rawBody: true` (a signature over the
 * exact bytes, e.g. an incoming webhook's HMAC) gets them as `request.rawBody`, alongside the
 * JSON the one body parser (json-body.ts) produced from the same bytes. Routes without the flag
 * get no hook at all, so they keep no copy.
 *
 * The copy is taken by a pass-through stream in preParsing, between the socket and fastify's body
 * reader, so fastify's byte limit (the route's `bodyLimit` or `server.bodyLimitBytes`) still
 * answers 413 BODY_TOO_LARGE; the tap itself never holds more than the limit.
 */
import { pipeline, Transform } from 'node:stream';
import type { FastifyReply, FastifyRequest } from 'fastify';

/** The preParsing hook that keeps the exact bytes of a body of at most `limit` bytes as `request.rawBody`. */
export function keepRawBody(limit: number) {
  return async (request: FastifyRequest, _reply: FastifyReply, payload: NodeJS.ReadableStream): Promise<NodeJS.ReadableStream> => {
    // Declared too large: fastify refuses it before reading a byte, so there is nothing to keep.
    if (Number(request.headers['content-length']) > limit) return payload;
    const chunks: Buffer[] = [];
    let size = 0;
    const tap = new Transform({
      transform(chunk: Buffer | string, _encoding, callback) {
        const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
        size += bytes.length;
        // Past the limit fastify answers 413 and stops reading; drop what was held and hold nothing more.
        if (size <= limit) chunks.push(bytes);
        else chunks.length = 0;
        callback(null, bytes);
      },
      flush(callback) {
        // A copy, so the handler never holds a view over a buffer the socket reuses.
        if (size <= limit) request.rawBody = Buffer.concat(chunks, size);
        chunks.length = 0;
        callback();
      },
    });
    // pipeline forwards a client abort to the tap (fastify reports it) and keeps a late error
    // after a 413, when fastify has stopped listening, from going unhandled.
    pipeline(payload, tap, () => undefined);
    return tap;
  };
}
