/**
 * The trust report page in a real browser (OPS-4): Chromium opens the public copy from a node on
 * loopback. The page renders under its strict CSP without a single violation (its one inline
 * style is allowed by hash and applies), and loads nothing but itself.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { chromiumSkipReason, freePort, launchChromium } from '../support/browser.ts';

(chromiumSkipReason ? describe.skip : describe)(`the trust report page in Chromium${chromiumSkipReason ? `: skipped, ${chromiumSkipReason}` : ''}`, () => {
  let t: TestApp;
  let browser: Browser;
  let origin: string;
  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    t = await createTestApp({ overrides: { 'trust.publicReport': true, 'server.publicUrl': origin, 'server.port': port }, logLevel: 'silent' });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('renders under its strict CSP with zero violations, its hashed inline style applied, and no request but the page', async () => {
    const page = await (await browser.newContext()).newPage();
    const violations: string[] = [];
    const requests: string[] = [];
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) violations.push(m.text());
    });
    page.on('request', (r) => requests.push(r.url()));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.log(`Content Security Policy violation: ${e.effectiveDirective}`));
    });
    const res = await page.goto(`${origin}/.well-known/trust-report.html`);
    expect(res?.status()).toBe(200);
    expect(await page.locator('h1').textContent()).toBe('Trust report');
    expect(await page.locator('tbody tr').count()).toBeGreaterThan(30);
    // The inline style applies: the state column is bold.
    expect(await page.locator('td.s').first().evaluate((el) => getComputedStyle(el).fontWeight)).toBe('600');
    expect(violations).toEqual([]);
    expect(requests.filter((u) => !u.endsWith('/.well-known/trust-report.html') && !u.endsWith('/favicon.ico'))).toEqual([]);
  }, 60_000);
});
