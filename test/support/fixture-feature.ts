/**
 * Routes that exist only in tests, to drive the edge through every refusal: a strict body,
 * a small body limit, a thrown internal error, a response that breaks its schema, a slow
 * route, and one route per guard kind.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { defineRoute, type Feature } from '../../src/server/route.ts';

export const echoBody = z.strictObject({
  name: z.string().min(1).max(100),
  tags: z.array(z.string().max(50)).max(20).optional(),
  meta: z.strictObject({ color: z.enum(['red', 'blue']), size: z.number().int().min(0).max(10) }).optional(),
});

export const fixtureFeature: Feature = {
  id: 'test-fixture',
  errorCodes: { FIXTURE_REFUSED: { status: 409, message: 'Refused by the fixture.', doc: 'Test-only code.' } },
  routes: [
    defineRoute({
      method: 'POST',
      url: '/test/echo',
      summary: 'echo',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'write',
      schema: { body: echoBody, response: { 200: echoBody } },
      handler: async ({ body }) => body,
    }),
    defineRoute({
      method: 'POST',
      url: '/test/small',
      summary: 'small body limit',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'write',
      bodyLimit: 1024,
      schema: { body: z.strictObject({ text: z.string() }), response: { 200: z.object({ length: z.number() }) } },
      handler: async ({ body }) => ({ length: body.text.length }),
    }),
    defineRoute({
      method: 'GET',
      url: '/test/items/:id',
      summary: 'params',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { params: z.strictObject({ id: z.uuid() }), querystring: z.strictObject({ verbose: z.enum(['true', 'false']).optional() }), response: { 200: z.object({ id: z.string() }) } },
      handler: async ({ params }) => ({ id: params.id }),
    }),
    defineRoute({
      method: 'GET',
      url: '/test/boom',
      summary: 'throws an internal error',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({}) } },
      handler: async () => {
        throw new Error('relation "users" failed: SELECT password_hash FROM users at /srv/gatehouse/src/secret.ts:12');
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/test/refused',
      summary: 'throws a feature error',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({}) } },
      handler: async () => {
        const { AppError } = await import('../../src/server/errors.ts');
        throw new AppError('FIXTURE_REFUSED');
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/test/bad-response',
      summary: 'breaks its response schema',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ ok: z.boolean() }) } },
      handler: async () => ({ ok: 'not-a-boolean', internal: '/srv/secret' }) as unknown as { ok: boolean },
    }),
    defineRoute({
      method: 'GET',
      url: '/test/slow',
      summary: 'slow',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { querystring: z.strictObject({ ms: z.coerce.number().int().min(0).max(5000) }), response: { 200: z.object({ waited: z.number() }) } },
      handler: async ({ query }) => {
        await sleep(query.ms);
        return { waited: query.ms };
      },
    }),
    defineRoute({
      method: 'GET',
      url: '/test/session',
      summary: 'session guard',
      guard: { kind: 'session' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ user: z.string() }) } },
      handler: async ({ principal }) => ({ user: principal?.id ?? '' }),
    }),
    defineRoute({
      method: 'POST',
      url: '/test/key',
      summary: 'api key guard',
      guard: { kind: 'apiKey', scope: 'ai:chat' },
      permission: null,
      rateCategory: 'ai',
      schema: { body: z.strictObject({ prompt: z.string().max(1000) }), response: { 200: z.object({ key: z.string() }) } },
      handler: async ({ principal }) => ({ key: principal?.id ?? '' }),
    }),
    defineRoute({
      method: 'POST',
      url: '/test/webhook',
      summary: 'webhook guard',
      guard: { kind: 'webhook', provider: 'test' },
      permission: null,
      rateCategory: 'write',
      schema: { body: z.looseObject({}), response: { 200: z.object({ ok: z.boolean() }) } },
      handler: async () => ({ ok: true }),
    }),
    defineRoute({
      method: 'POST',
      url: '/test/cron',
      summary: 'cron guard',
      guard: { kind: 'cron' },
      permission: null,
      rateCategory: 'ops',
      schema: { body: z.strictObject({}), response: { 200: z.object({ ran: z.boolean() }) } },
      handler: async () => ({ ran: true }),
    }),
  ],
};
