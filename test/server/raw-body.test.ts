/**
 * Raw body on demand (src/server/edge/raw-body.ts): a route that declares `rawBody: true` sees the
 * exact bytes it was sent, so a signature over them (an incoming webhook's HMAC) can be checked;
 * other routes keep no copy; the body limit still refuses an oversized body with 413.
 */
import { createHmac } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { keepRawBody } from '../../src/server/edge/raw-body.ts';
import { defineRoute, validateRoute, type Feature } from '../../src/server/route.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

const HMAC_KEY = 'raw-body-test-key';
const LIMIT = 2048;
const hmacOf = (bytes: Buffer | string): string => createHmac('sha256', HMAC_KEY).update(bytes).digest('hex');

const anyObject = z.record(z.string(), z.unknown());
const seen = z.strictObject({ hmac: z.string().nullable(), rawBase64: z.string().nullable(), parsed: anyObject });

/** Test-only routes, declared through the same route contract as every feature's. */
const rawBodyFeature: Feature = {
  id: 'test-raw-body',
  routes: [
    defineRoute({
      method: 'POST',
      url: '/test/raw/signed',
      summary: 'keeps its raw body',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'write',
      bodyLimit: LIMIT,
      rawBody: true,
      schema: { body: anyObject, response: { 200: seen } },
      handler: async ({ body, request }) => ({
        hmac: request.rawBody ? hmacOf(request.rawBody) : null,
        rawBase64: request.rawBody ? request.rawBody.toString('base64') : null,
        parsed: body,
      }),
    }),
    defineRoute({
      method: 'POST',
      url: '/test/raw/plain',
      summary: 'keeps no raw body',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'write',
      bodyLimit: LIMIT,
      schema: { body: anyObject, response: { 200: seen } },
      handler: async ({ body, request }) => ({ hmac: null, rawBase64: request.rawBody === undefined ? null : 'present', parsed: body }),
    }),
  ],
};

// Whitespace, key order, escapes (\u00e9, a surrogate pair, \/) and a literal UTF-8 character:
// anything that re-serializes the parsed JSON produces other bytes and another HMAC.
const UNUSUAL = Buffer.from('{\n  "zeta" :\t"\\u00e9t\\u00e9" ,"alpha":[1, 2 ,3.0],\r\n"emoji":"\\ud83d\\ude00", "path":"a\\/b", "plain":"é"  }  \n', 'utf8');

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ extraFeatures: [rawBodyFeature], overrides: { 'rateLimit.enabled': false } });
});
afterAll(async () => t.close());

const post = (url: string, payload: Buffer | string | Readable, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...headers } });

describe('raw body on demand', () => {
  it('attack: a signature over the bytes as sent is checked against re-serialized JSON; the handler sees the exact bytes instead', async () => {
    const res = await post('/test/raw/signed', UNUSUAL);
    expect(res.statusCode).toBe(200);
    const out = res.json() as z.infer<typeof seen>;
    expect(Buffer.from(out.rawBase64 ?? '', 'base64').equals(UNUSUAL)).toBe(true);
    expect(out.hmac).toBe(hmacOf(UNUSUAL));
    // The parsed JSON is there too, and its re-serialization would not verify.
    expect(out.parsed).toEqual({ zeta: 'été', alpha: [1, 2, 3], emoji: '😀', path: 'a/b', plain: 'é' });
    expect(hmacOf(JSON.stringify(out.parsed))).not.toBe(hmacOf(UNUSUAL));
  });

  it('gives each of many concurrent requests its own bytes', async () => {
    const bodies = Array.from({ length: 40 }, (_, i) => Buffer.from(`{ "n" : ${i},\t"pad":"${'x'.repeat(i * 37)}" }`));
    const answers = await Promise.all(bodies.map((b) => post('/test/raw/signed', b)));
    answers.forEach((res, i) => {
      expect(res.statusCode).toBe(200);
      expect((res.json() as z.infer<typeof seen>).hmac).toBe(hmacOf(bodies[i]!));
    });
  });

  it('keeps no copy on a route that does not declare rawBody', async () => {
    const res = await post('/test/raw/plain', UNUSUAL);
    expect(res.statusCode).toBe(200);
    expect((res.json() as z.infer<typeof seen>).rawBase64).toBeNull();
  });

  it('accepts a body of exactly the limit', async () => {
    const body = Buffer.from(`{"fill":"${'y'.repeat(LIMIT - 11)}"}`);
    expect(body.length).toBe(LIMIT);
    const res = await post('/test/raw/signed', body);
    expect(res.statusCode).toBe(200);
    expect((res.json() as z.infer<typeof seen>).hmac).toBe(hmacOf(body));
  });

  it('attack: an oversized body (declared or chunked) is refused with 413 BODY_TOO_LARGE', async () => {
    const body = Buffer.from(`{"fill":"${'y'.repeat(LIMIT - 10)}"}`);
    expect(body.length).toBe(LIMIT + 1);
    const declared = await post('/test/raw/signed', body);
    expect(declared.statusCode).toBe(413);
    expect(declared.json().error.code).toBe('BODY_TOO_LARGE');

    const chunks = [body.subarray(0, 1000), body.subarray(1000, 2000), body.subarray(2000)];
    const chunked = await post('/test/raw/signed', Readable.from(chunks), { 'transfer-encoding': 'chunked' });
    expect(chunked.statusCode).toBe(413);
    expect(chunked.json().error.code).toBe('BODY_TOO_LARGE');
  });
});

describe('the raw-body tap itself', () => {
  async function drain(limit: number, chunks: Buffer[]): Promise<Buffer | undefined> {
    const request = { headers: {}, rawBody: undefined } as unknown as Parameters<ReturnType<typeof keepRawBody>>[0];
    const out = await keepRawBody(limit)(request, undefined as never, Readable.from(chunks));
    for await (const _ of out as AsyncIterable<Buffer>) void _; // a reader that never stops early
    return request.rawBody;
  }

  it('holds nothing once a body passes the limit, even when read to the end', async () => {
    expect(await drain(10, [Buffer.from('12345678'), Buffer.from('9abcdef')])).toBeUndefined();
    expect((await drain(15, [Buffer.from('12345678'), Buffer.from('9abcdef')]))?.toString()).toBe('123456789abcdef');
  });

  it('is refused on a route that takes no body', () => {
    const route = { method: 'GET', url: '/x', guard: { kind: 'public' }, permission: null, rateCategory: 'read', rawBody: true, schema: { response: { 200: z.object({}) } } } as const;
    expect(validateRoute(route as never)).toBe('route GET /x keeps a raw body but takes none');
  });
});
