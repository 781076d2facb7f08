/**
 * Vendor keys in vendor error bodies (GW-2: never in a response, an error or a log). A provider
 * echoed the key it was sent in a 400, not only verbatim (cut out before) but encoded: base64,
 * base64url, hex, reversed, spaced out, URL-encoded, in the message and in other fields. The
 * gateway rebuilds the error from known fields, so no form of the key reaches the client or the log.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WITHHELD_MESSAGE } from '../../src/gateway/upstream-errors.ts';
import { encodedKeyForms } from '../support/mock-vendor.ts';
import { createApiKey, createOrgAndWorkspace, startGatewayApp, VENDOR_KEYS, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser } from '../support/users.ts';

let t: GatewayTestApp;
let key: string;

beforeAll(async () => {
  t = await startGatewayApp();
  const owner = await signUpUser(t.app, t.mail, 'leaks@example.com');
  const { org, ws } = await createOrgAndWorkspace(t, owner, 'Leaks');
  key = (await createApiKey(t, owner, org, ws)).key;
});

afterAll(async () => {
  await t?.close();
});

/** Every 16-character run of every form of `vendorKey` that occurs in `text`, named by form. */
function leaksOf(text: string, vendorKey: string): string[] {
  const found: string[] = [];
  for (const [name, form] of Object.entries({ raw: vendorKey, ...encodedKeyForms(vendorKey) })) {
    for (let i = 0; i + 16 <= form.length; i++) {
      if (text.includes(form.slice(i, i + 16))) {
        found.push(name);
        break;
      }
    }
  }
  return found;
}

async function call(path: string, body: object): Promise<{ status: number; text: string; headers: string }> {
  const res = await fetch(`${t.url}${path}`, { method: 'POST', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, text: await res.text(), headers: JSON.stringify([...res.headers]) };
}

describe('vendor error bodies are rebuilt from safe fields', () => {
  it('the mock really does echo every form of the key (the attack is live)', async () => {
    t.vendor.reset();
    await call('/v1/chat/completions', { model: 'mock-echo-key-encoded', messages: [{ role: 'user', content: 'hi' }] });
    const upstreamAnswer = t.vendor.requests[0]?.response ?? '';
    expect(leaksOf(upstreamAnswer, VENDOR_KEYS.openai).sort()).toEqual(['base64', 'base64url', 'hex', 'reversed', 'spaced', 'urlEncoded']);
  });

  it('attack: a vendor 400 echoing the OpenAI key as base64, base64url, hex, reversed, spaced out and URL-encoded — 400 in OpenAI shape, message withheld, no form of the key', async () => {
    const res = await call('/v1/chat/completions', { model: 'mock-echo-key-encoded', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: { message: WITHHELD_MESSAGE, type: 'invalid_request_error', param: null, code: null } });
    expect(leaksOf(res.text + res.headers, VENDOR_KEYS.openai)).toEqual([]);
  });

  it('attack: the same against the Anthropic key on /v1/messages — 400 in Anthropic shape, message withheld, no form of the key', async () => {
    const res = await call('/v1/messages', { model: 'mock-echo-key-encoded', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(400);
    const body = JSON.parse(res.text) as { type: string; error: { type: string; message: string } };
    expect(body).toMatchObject({ type: 'error', error: { type: 'invalid_request_error', message: WITHHELD_MESSAGE } });
    expect(Object.keys(body).sort()).toEqual(['error', 'request_id', 'type']);
    expect(leaksOf(res.text + res.headers, VENDOR_KEYS.anthropic)).toEqual([]);
  });

  it('an honest vendor message still reaches the client (only known fields, in the client\'s shape)', async () => {
    const res = await call('/v1/chat/completions', { model: 'mock-400', messages: [{ role: 'user', content: 'hi' }] });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.text)).toEqual({ error: { message: 'mock status 400', type: 'invalid_request_error', param: null, code: null } });
  });

  it('no form of either vendor key in the logs', async () => {
    await t.node.gateway.meter.flush();
    const log = t.logText();
    expect(log.length).toBeGreaterThan(0);
    expect(leaksOf(log, VENDOR_KEYS.openai)).toEqual([]);
    expect(leaksOf(log, VENDOR_KEYS.anthropic)).toEqual([]);
  });
});
