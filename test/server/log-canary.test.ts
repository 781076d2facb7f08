/**
 * DATA-4 canary: requests carrying known secret values and personal data go through the whole
 * server (auth failures, validation errors, internal errors); none of them may appear in the logs.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';
import { defineRoute, type Feature } from '../../src/server/route.ts';

const canary = (label: string): string => `${label}-${randomBytes(12).toString('hex')}`;
const CRON_SECRET = canary('cronsecret');
const BEARER = canary('bearer');
const COOKIE = canary('cookie');
const API_KEY = `gh_${randomBytes(24).toString('base64url')}`;
const QUERY_TOKEN = canary('querytoken');
const PASSWORD = canary('password');
const EMAIL_LOCAL = `alice${randomBytes(4).toString('hex')}`;
const EMAIL = `${EMAIL_LOCAL}@example.com`;
const PHONE = '+14155550199';

// A route whose failure message carries the configured secret and an email, as a careless
// driver error might.
const leakyFeature: Feature = {
  id: 'leaky',
  routes: [
    defineRoute({
      method: 'GET',
      url: '/test/leaky-error',
      summary: 'throws an error quoting a secret',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({}) } },
      handler: async () => {
        throw new Error(`connect failed with secret ${CRON_SECRET} for ${EMAIL} (phone ${PHONE})`);
      },
    }),
  ],
};

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({
    extraFeatures: [fixtureFeature, leakyFeature],
    env: { GATEHOUSE_CRON_SECRET: CRON_SECRET },
    logLevel: 'debug',
  });
});
afterAll(async () => t.close());

describe('log hygiene canary', () => {
  it('no secret or personal datum sent in any request reaches the log', async () => {
    await t.app.inject({ url: '/test/session', headers: { authorization: `Bearer ${BEARER}`, cookie: `__Host-session=${COOKIE}` } });
    await t.app.inject({ method: 'POST', url: '/test/key', payload: { prompt: 'hi' }, headers: { 'x-api-key': API_KEY } });
    await t.app.inject({ method: 'POST', url: '/test/cron', payload: {}, headers: { authorization: `Bearer ${CRON_SECRET}` } });
    await t.app.inject({ url: `/test/items/00000000-0000-4000-8000-000000000000?token=${QUERY_TOKEN}&email=${encodeURIComponent(EMAIL)}` });
    await t.app.inject({ method: 'POST', url: '/test/echo', payload: { name: EMAIL, password: PASSWORD } });
    await t.app.inject({ method: 'POST', url: '/test/echo', payload: `{"name":"${EMAIL}","password":"${PASSWORD}"`, headers: { 'content-type': 'application/json' } });
    const boom = await t.app.inject({ url: '/test/leaky-error' });
    expect(boom.statusCode).toBe(500);

    const log = t.logText();
    // The requests were logged at all (else the test proves nothing).
    expect(log).toContain('"url":"/test/items/');
    expect(log).toContain('connect failed with secret');
    for (const secret of [CRON_SECRET, BEARER, COOKIE, API_KEY, QUERY_TOKEN, PASSWORD, EMAIL, EMAIL_LOCAL, PHONE]) {
      expect(log, `leaked ${secret.slice(0, 12)}…`).not.toContain(secret);
    }
    expect(log).toContain('a***@example.com');
  });
});
