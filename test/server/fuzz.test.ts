/**
 * Random bodies at every route that takes one: whatever arrives, the answer is a 4xx or a
 * success, never a 5xx, and always the error envelope when refused (or, on a route serving
 * another API's SDKs, that API's error shape).
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';

// Built at collection time, so each route below is a test of its own: a failure names its route,
// and no single test carries the whole fuzz run (300 bodies x every route with a body).
const t: TestApp = await createTestApp({
  extraFeatures: [fixtureFeature],
  overrides: { 'rateLimit.enabled': false },
  env: { GATEHOUSE_CRON_SECRET: 'cron-secret-0123456789abcdef' },
  verifiers: { apiKey: async () => ({ kind: 'apiKey', id: 'k', scopes: ['ai:chat'] }), webhook: { test: async () => ({ kind: 'webhook', id: 't' }) } },
  logLevel: 'silent',
});
afterAll(async () => t.close());

const bodyArb = fc.oneof(
  fc.json({ depthSize: 'medium' }),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc.string(),
  fc.record({ name: fc.oneof(fc.string(), fc.integer(), fc.constant(null)), tags: fc.anything() }).map((v) => JSON.stringify(v)),
  fc.constantFrom('{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '[', '\u0000', '{"name":"\ud800"}', '1e999999', '"'),
);
const typeArb = fc.constantFrom('application/json', 'application/json; charset=utf-8', 'text/plain', 'application/octet-stream', 'application/json; charset=latin1');

/** Bodies per route: a fixed count, so the run is bounded by work, not by a clock. */
const RUNS_PER_ROUTE = 300;
const routes = t.app.gatehouse.routes.filter((r) => r.hasBody);

describe('random bodies never cause a 5xx', () => {
  it('covers the routes that take a body', () => {
    expect(routes.length).toBeGreaterThanOrEqual(4);
  });
  it.each(routes.map((r) => [`${r.method} ${r.url}`, r] as const))('holds for %s', async (_name, route) => {
    await fc.assert(
      fc.asyncProperty(bodyArb, typeArb, async (payload, type) => {
        const res = await t.app.inject({
          method: route.method as 'POST',
          url: route.url,
          payload,
          headers: { 'content-type': type, authorization: 'Bearer cron-secret-0123456789abcdef' },
        });
        expect(res.statusCode, `${route.method} ${route.url} <- ${type} ${payload.slice(0, 80)}`).toBeLessThan(500);
        // Routes serving another API's SDKs (the AI gateway) answer in that API's error shape.
        // The MCP endpoint answers JSON-RPC error objects, the Gatehouse code in error.data.code.
        if (res.statusCode >= 400 && route.errorFormat?.name === 'json-rpc') expect(res.json().error.data.code).toMatch(/^[A-Z_]+$/);
        // OAuth endpoints answer RFC 6749 error objects, the Gatehouse code in gatehouse_code.
        else if (res.statusCode >= 400 && route.errorFormat?.name === 'oauth') expect([res.json().error, res.json().gatehouse_code]).toEqual([expect.stringMatching(/^[a-z_]+$/), expect.stringMatching(/^[A-Z_]+$/)]);
        else if (res.statusCode >= 400 && route.errorFormat) expect(res.json().error.type).toMatch(/^[a-z_]+$/);
        else if (res.statusCode >= 400) expect(res.json().error.code).toMatch(/^[A-Z_]+$/);
      }),
      { numRuns: RUNS_PER_ROUTE },
    );
  });
});
