/**
 * EDGE-4, the NUL rule: a NUL character (U+0000) in any string that could reach the database
 * (PostgreSQL refuses it in text and jsonb and the request used to end in a 500) is refused with
 * 400 VALIDATION_FAILED naming the field, by the one validator every route is compiled with.
 *
 * The attack: put `\u0000` in each string field of each operation's body, in each query field and
 * in each path parameter, found from the OpenAPI document (new routes are covered automatically).
 * The guards and the authorizer are stubbed to let the caller through, so the request reaches
 * validation on every operation; one end-to-end case goes through the real ones on PGlite.
 */
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';
import { signUpUser } from '../support/users.ts';
import { findNul } from '../../src/server/edge/validation.ts';
import { API_KEY_SCOPES } from '../../src/gateway/keys.ts';

const CRON_SECRET = 'cron-secret-0123456789abcdef';
const METRICS_TOKEN = 'metrics-token-0123456789abcdef';
const ID = '00000000-0000-4000-8000-000000000001';
const NUL_TEXT = 'a\u0000b';

interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  const?: unknown;
  pattern?: string;
  $ref?: string;
}
interface Operation {
  parameters?: { in: string; name: string; schema?: JsonSchema & { format?: string } }[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}

let t: TestApp;
let ops: { method: string; path: string; op: Operation }[];
beforeAll(async () => {
  t = await createTestApp({
    extraFeatures: [fixtureFeature],
    overrides: { 'rateLimit.enabled': false },
    env: { GATEHOUSE_CRON_SECRET: CRON_SECRET, GATEHOUSE_METRICS_TOKEN: METRICS_TOKEN },
    logLevel: 'silent',
    verifiers: {
      session: async () => ({ kind: 'user', id: ID, sessionId: ID }),
      apiKey: async () => ({ kind: 'apiKey', id: ID, tenantId: ID, workspaceId: ID, scopes: ['ai:messages', ...API_KEY_SCOPES] }),
      webhook: { test: async () => ({ kind: 'webhook', id: 'test' }) },
      authorize: async () => ({ tenantId: ID, role: 'owner', orgRole: 'owner', workspaceId: ID }),
    },
  });
  const doc = (await t.app.inject({ url: '/openapi.json' })).json<{ paths: Record<string, Record<string, Operation>> }>();
  ops = Object.entries(doc.paths).flatMap(([path, byMethod]) => Object.entries(byMethod).map(([method, op]) => ({ method: method.toUpperCase(), path, op })));
});
afterAll(async () => t.close());

/** A value of the schema's shape (not necessarily valid: the NUL rule runs before the schema). */
function sample(schema: JsonSchema | undefined, depth = 0): unknown {
  if (!schema || depth > 6) return 'x';
  if (schema.const !== undefined) return schema.const;
  if (schema.enum?.length) return schema.enum[0];
  const alt = schema.anyOf ?? schema.oneOf ?? schema.allOf;
  if (alt?.length) return sample(alt.find((s) => s.type !== 'null') ?? alt[0], depth + 1);
  const type = Array.isArray(schema.type) ? schema.type.find((x) => x !== 'null') : schema.type;
  if (type === 'object' || schema.properties) {
    return Object.fromEntries(Object.entries(schema.properties ?? {}).map(([k, s]) => [k, sample(s, depth + 1)]));
  }
  if (type === 'array') return [sample(schema.items, depth + 1)];
  if (type === 'integer' || type === 'number') return 1;
  if (type === 'boolean') return true;
  return 'x';
}

/** Paths (dotted) of every string-typed leaf the schema declares, objects and arrays included. */
function stringFields(schema: JsonSchema | undefined, prefix = '', depth = 0): string[] {
  if (!schema || depth > 6) return [];
  const alt = schema.anyOf ?? schema.oneOf ?? schema.allOf;
  if (alt) return [...new Set(alt.flatMap((s) => stringFields(s, prefix, depth + 1)))];
  const types = Array.isArray(schema.type) ? schema.type : [schema.type];
  if (schema.properties) {
    return Object.entries(schema.properties).flatMap(([k, s]) => stringFields(s, prefix ? `${prefix}.${k}` : k, depth + 1));
  }
  if (types.includes('array')) return stringFields(schema.items, `${prefix}.0`, depth + 1);
  if (types.includes('string') && schema.enum === undefined && schema.const === undefined) return [prefix];
  return [];
}

function setAt(target: unknown, path: string, value: unknown): unknown {
  const root = structuredClone(target) ?? {};
  const keys = path.split('.');
  let node = root as Record<string, unknown>;
  for (const [i, key] of keys.entries()) {
    if (i === keys.length - 1) node[key] = value;
    else {
      const next = keys[i + 1] ?? '';
      if (typeof node[key] !== 'object' || node[key] === null) node[key] = /^\d+$/.test(next) ? [] : {};
      node = node[key] as Record<string, unknown>;
    }
  }
  return root;
}

/** The operation's path with a schema-valid value in each parameter, `params` overriding. */
function urlOf(path: string, op: Operation, params: Record<string, string> = {}): string {
  const declared = new Map((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p.schema]));
  const valid = (name: string): string => {
    const schema = declared.get(name);
    if (schema?.enum?.length) return String(schema.enum[0]);
    // An API key id: 16 letters and digits.
    if (schema?.pattern === '^[0-9A-Za-z]{16}$') return 'A0'.repeat(8);
    return schema?.format === 'uuid' || schema?.type === undefined ? ID : 'x';
  };
  return path.replace(/\{([a-zA-Z]+)\}/g, (_m, name: string) => params[name] ?? valid(name));
}

const HEADERS = { authorization: `Bearer ${CRON_SECRET}`, 'x-api-key': 'gatehouse_any', 'x-test-signature': 'good' };

function send(method: string, url: string, payload?: unknown): Promise<LightMyRequestResponse> {
  return t.app.inject({ method: method as 'POST', url, headers: HEADERS, ...(payload !== undefined ? { payload: payload as object } : {}) });
}

/** 400 naming the field: the Gatehouse envelope, or the vendor shape on the AI gateway's routes. */
function refusal(res: LightMyRequestResponse): { status: number; code: string; message: string } {
  // JSON-RPC errors (the MCP endpoint) carry the Gatehouse code in error.data.code.
  const body = res.json<{ error?: { code?: string | number; type?: string; message?: string; data?: { code?: string } }; gatehouse_code?: string; error_description?: string }>();
  // OAuth error objects (the MCP authorization server) carry it in gatehouse_code.
  if (body.gatehouse_code !== undefined) return { status: res.statusCode, code: body.gatehouse_code, message: String(body.error_description) };
  return { status: res.statusCode, code: String(body.error?.data?.code ?? body.error?.code ?? body.error?.type).toUpperCase(), message: String(body.error?.message) };
}

// OpenAI's shape carries the code in lower case; Anthropic's only the type.
const CODES = ['VALIDATION_FAILED', 'INVALID_REQUEST_ERROR'];

describe('a NUL character is refused with 400 naming the field, on every operation', () => {
  it('in each string field of each JSON body (top level and nested)', async () => {
    let checked = 0;
    const bodyOps = ops.filter((o) => o.op.requestBody?.content?.['application/json']?.schema);
    expect(bodyOps.length).toBeGreaterThan(30);
    // Every body route in the table is in the document (hidden ones excepted).
    for (const route of t.app.gatehouse.routes.filter((r) => r.hasBody && !r.url.startsWith('/v1/sso/saml'))) {
      const path = route.url.replace(/:([a-zA-Z]+)/g, '{$1}');
      if (ops.some((o) => o.path === path && o.method === route.method)) continue;
      expect.soft(route.feature === 'test-fixture' || route.url.includes('/acs'), `${route.method} ${route.url} missing from OpenAPI`).toBe(true);
    }
    for (const { method, path, op } of bodyOps) {
      // A provider's webhook takes any bytes and is verified before validation: the path test covers it.
      if (path.startsWith('/v1/hooks/')) continue;
      const schema = op.requestBody?.content?.['application/json']?.schema;
      const valid = sample(schema);
      const fields = stringFields(schema);
      // A body that is itself a bare string, or has no string field: the value at the root.
      for (const field of fields.length ? fields : ['name']) {
        const res = await send(method, urlOf(path, op), field === '' ? NUL_TEXT : setAt(valid, field, NUL_TEXT));
        const got = refusal(res);
        const where = `${method} ${path} body.${field}`;
        expect({ where, status: got.status, code: CODES.includes(got.code) }).toEqual({ where, status: 400, code: true });
        expect(got.message, where).toContain(`body${field ? '.' + field : ''}: must not contain a NUL character`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(60);
  });

  it('in an object key of a body', async () => {
    const res = await send('POST', '/test/echo', { name: 'ok', ['evil\u0000key']: 'x' });
    expect(refusal(res)).toEqual({ status: 400, code: 'VALIDATION_FAILED', message: 'body.evil\\u0000key: must not contain a NUL character (U+0000)' });
  });

  it('in each query field', async () => {
    let checked = 0;
    for (const { method, path, op } of ops) {
      for (const p of (op.parameters ?? []).filter((x) => x.in === 'query')) {
        const res = await send(method, `${urlOf(path, op)}?${encodeURIComponent(p.name)}=a%00b`, method === 'GET' || method === 'DELETE' ? undefined : {});
        const got = refusal(res);
        const where = `${method} ${path} ?${p.name}`;
        expect({ where, status: got.status, code: CODES.includes(got.code) }).toEqual({ where, status: 400, code: true });
        expect(got.message, where).toContain(`querystring.${p.name}: must not contain a NUL character`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });

  it('in each path parameter', async () => {
    let checked = 0;
    for (const { method, path, op } of ops) {
      for (const p of (op.parameters ?? []).filter((x) => x.in === 'path')) {
        const schema = op.requestBody?.content?.['application/json']?.schema;
        // A body route whose body the document leaves open (a webhook's raw bytes) gets an empty JSON object.
        const res = await send(method, urlOf(path, op, { [p.name]: 'a%00b' }), (schema ? sample(schema) : undefined) ?? (method === 'GET' || method === 'DELETE' ? undefined : {}));
        const where = `${method} ${path} :${p.name}`;
        // A provider's webhook is verified before validation (the signature decides, over the exact
        // bytes): a NUL in its address is refused there, as an address with no endpoint, never served.
        if (path.startsWith('/v1/hooks/')) {
          expect({ where, refused: res.statusCode >= 400 && res.statusCode < 500 }).toEqual({ where, refused: true });
          continue;
        }
        const got = refusal(res);
        expect({ where, status: got.status, code: CODES.includes(got.code) }).toEqual({ where, status: 400, code: true });
        expect(got.message, where).toContain(`params.${p.name}: must not contain a NUL character`);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(30);
  });
});

describe('end to end through the real guards and authorizer', () => {
  it('an org, a workspace and an SSO connection named with a NUL: 400 naming the field, nothing stored', async () => {
    const real = await createTestApp({ overrides: { 'rateLimit.enabled': false }, logLevel: 'silent' });
    try {
      const user = await signUpUser(real.app, real.mail, 'nul@example.com');
      const call = (method: 'POST' | 'GET', url: string, payload?: object): Promise<LightMyRequestResponse> =>
        real.app.inject({ method, url, headers: user.auth, ...(payload ? { payload } : {}) });
      expect(refusal(await call('POST', '/v1/orgs', { name: NUL_TEXT }))).toEqual({ status: 400, code: 'VALIDATION_FAILED', message: 'body.name: must not contain a NUL character (U+0000)' });
      expect((await call('GET', '/v1/orgs')).json<{ orgs: unknown[] }>().orgs).toEqual([]);
      const org = (await call('POST', '/v1/orgs', { name: 'Acme' })).json<{ id: string }>().id;
      expect(refusal(await call('POST', `/v1/orgs/${org}/workspaces`, { name: NUL_TEXT }))).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', message: expect.stringContaining('body.name:') });
      const sso = await call('POST', `/v1/orgs/${org}/sso/connections`, { protocol: 'oidc', name: 'x', issuer: 'https://idp.example.com/a\u0000b', clientId: 'c', clientSecret: 's' });
      expect(refusal(sso)).toMatchObject({ status: 400, code: 'VALIDATION_FAILED', message: expect.stringContaining('body.issuer:') });
    } finally {
      await real.close();
    }
  });
});

describe('findNul', () => {
  it('names the first string or key holding U+0000, and nothing else', () => {
    expect(findNul({ a: ['ok', { b: 'x\u0000' }] })).toBe('a.1.b');
    expect(findNul('\u0000')).toBe('');
    expect(findNul({ a: 'fine', n: 1, z: null, t: true, arr: [] })).toBeNull();
    expect(findNul(Buffer.from([0, 0]))).toBeNull();
  });
});
