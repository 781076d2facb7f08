/**
 * A client token in a real browser (GW-6): Debian's Chromium (playwright-core) opens a page served
 * on loopback that loads the stock `openai` SDK (its ESM build, with `dangerouslyAllowBrowser`),
 * and calls the gateway (another origin, pointed at the mock vendor) with a token minted for that
 * page's origin: the preflight passes, the call answers, JSON and streamed. The same page on an
 * origin the token does not list gets 403 ORIGIN_NOT_ALLOWED (its preflight passes: a preflight
 * cannot carry the token, so the refusal is the actual request's), and a page using the long-lived
 * API key itself is refused as well.
 */
import { realpathSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason, launchChromium } from '../support/browser.ts';
import { createApiKey, createOrgAndWorkspace, expectStatus, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { MOCK_TEXT } from '../support/mock-vendor.ts';
import { signUpUser } from '../support/users.ts';

const OPENAI_DIR = realpathSync(join(import.meta.dirname, '../../node_modules/openai'));

const PAGE = `<!doctype html><meta charset="utf-8"><title>client token</title>
<script type="module">
import OpenAI from '/openai/index.mjs';
window.callGateway = async (baseURL, apiKey, stream) => {
  try {
    const client = new OpenAI({ apiKey, baseURL, dangerouslyAllowBrowser: true, maxRetries: 0 });
    const request = { model: 'mock-model', messages: [{ role: 'user', content: 'Say hello.' }] };
    if (!stream) return { ok: true, text: (await client.chat.completions.create(request)).choices[0].message.content };
    let text = '';
    for await (const chunk of await client.chat.completions.create({ ...request, stream: true })) text += chunk.choices[0]?.delta?.content ?? '';
    return { ok: true, text };
  } catch (e) {
    return { ok: false, status: e.status ?? null, kind: e.constructor.name, code: e.code ?? null };
  }
};
document.documentElement.dataset.ready = 'true';
</script>`;

/** A loopback page server: the page at /, the SDK's files under /openai/. */
async function startPageServer(): Promise<{ origin: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (path === '/') {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(PAGE);
      return;
    }
    const file = normalize(join(OPENAI_DIR, path.replace(/^\/openai\//, '')));
    if (!path.startsWith('/openai/') || !file.startsWith(OPENAI_DIR)) {
      res.writeHead(404).end();
      return;
    }
    readFile(file).then(
      (body) => res.writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

(chromiumSkipReason ? describe.skip : describe)(`a client token in Chromium with the openai SDK${chromiumSkipReason ? `: skipped, ${chromiumSkipReason}` : ''}`, () => {
  let t: GatewayTestApp;
  let browser: Browser;
  let good: { origin: string; server: Server };
  let wrong: { origin: string; server: Server };
  let key: string;

  beforeAll(async () => {
    t = await startGatewayApp();
    const owner = await signUpUser(t.app, t.mail, 'tokens-browser@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, owner, 'Browser');
    key = (await createApiKey(t, owner, org, ws, { scopes: ['ai:chat', 'tokens:mint'] })).key;
    good = await startPageServer();
    wrong = await startPageServer();
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    for (const s of [good, wrong]) if (s) await new Promise((r) => s.server.close(r));
    await t?.close();
  });

  async function mintFor(origin: string): Promise<string> {
    const res = await t.app.inject({ method: 'POST', url: '/v1/tokens', payload: { allowedOrigins: [origin], subject: 'browser-user' }, headers: { authorization: `Bearer ${key}` } });
    return expectStatus(res, 201).json<{ token: string }>().token;
  }

  async function openPage(origin: string): Promise<Page> {
    const page = await browser.newPage();
    await page.goto(`${origin}/`);
    await page.waitForSelector('html[data-ready="true"]');
    return page;
  }

  const call = (page: Page, token: string, stream: boolean) =>
    page.evaluate(([baseURL, apiKey, s]) => (window as unknown as { callGateway: (b: string, k: string, s: boolean) => Promise<Record<string, unknown>> }).callGateway(baseURL, apiKey, s), [`${t.url}/v1`, token, stream] as [string, string, boolean]);

  it('a page on the token\'s origin calls the gateway with the SDK, JSON and streamed', async () => {
    const token = await mintFor(good.origin);
    const page = await openPage(good.origin);
    expect(await call(page, token, false)).toEqual({ ok: true, text: MOCK_TEXT });
    expect(await call(page, token, true)).toEqual({ ok: true, text: MOCK_TEXT });
    await page.close();
  });

  it('attack: a page on an origin the token does not list is refused (403 ORIGIN_NOT_ALLOWED), and so is a page holding the API key', async () => {
    const token = await mintFor(good.origin);
    const page = await openPage(wrong.origin);
    expect(await call(page, token, false)).toEqual({ ok: false, status: 403, kind: 'PermissionDeniedError', code: 'origin_not_allowed' });
    expect(await call(page, key, false)).toEqual({ ok: false, status: 403, kind: 'PermissionDeniedError', code: 'origin_not_allowed' });
    await page.close();
  });
});
