/**
 * The API reference UI in a real browser (EDGE-2): Debian's Chromium driven by playwright-core
 * opens /docs/ from a node listening on loopback. The page must run under its nonce CSP without a
 * single violation (the UI's bundle creates style elements, writes style attributes and probes for
 * eval; each of those used to be refused and reported), and the vendor's hosted-service menus
 * ("Developer Tools", "Configure", "Share", "Deploy") must not be shown.
 */
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { chromiumSkipReason, freePort, launchChromium } from '../support/browser.ts';

const skipReason = chromiumSkipReason;

interface Violation {
  directive: string;
  blocked: string;
  sample: string;
}

(skipReason ? describe.skip : describe)(`/docs/ in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let t: TestApp;
  let browser: Browser;
  let page: Page;
  let origin: string;
  const cspConsole: string[] = [];

  beforeAll(async () => {
    const port = await freePort();
    origin = `http://localhost:${port}`;
    t = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'server.publicUrl': origin, 'server.port': port }, logLevel: 'silent' });
    await t.app.listen({ host: '127.0.0.1', port });
    browser = await launchChromium();
    page = await (await browser.newContext()).newPage();
    page.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) cspConsole.push(m.text());
    });
    // Every violation, also those of elements not yet in the document (events do not reach the
    // document then; the reporting API sees them all).
    await page.addInitScript(() => {
      const seen: Violation[] = [];
      (window as unknown as { cspViolations: Violation[] }).cspViolations = seen;
      document.addEventListener('securitypolicyviolation', (e) => seen.push({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample }));
      new ReportingObserver(
        (reports) => {
          for (const r of reports) {
            const body = r.body as unknown as { effectiveDirective: string; blockedURL: string; sample: string };
            seen.push({ directive: body.effectiveDirective, blocked: body.blockedURL, sample: body.sample });
          }
        },
        { types: ['csp-violation'], buffered: true },
      ).observe();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  const violations = (): Promise<Violation[]> => page.evaluate(() => (window as unknown as { cspViolations: Violation[] }).cspViolations);

  it('loads under its nonce CSP with zero violations, also after opening a section, and no unsafe-inline in it', async () => {
    const res = await page.goto(`${origin}/docs/`, { waitUntil: 'networkidle' });
    expect(res?.status()).toBe(200);
    const csp = String(res?.headers()['content-security-policy']);
    expect(csp).toMatch(/script-src 'self' 'nonce-[0-9a-f]{32}';/);
    expect(csp).toMatch(/style-src-elem 'self' 'nonce-[0-9a-f]{32}';/);
    expect(csp).not.toMatch(/unsafe-(inline|eval|hashes)/);
    await page.getByRole('heading', { name: 'Gatehouse API' }).first().waitFor({ state: 'visible', timeout: 60_000 });
    // The UI creates more styles as sections open; open one and let it settle.
    await page.getByText('orgs', { exact: true }).first().click();
    await page.waitForLoadState('networkidle');
    await page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 500))));
    expect(await violations()).toEqual([]);
    expect(cspConsole).toEqual([]);
    // The bundle's styles applied: the page is not unstyled (the sidebar has a width of its own).
    const sidebar = await page.locator('.t-doc__sidebar').first().boundingBox();
    expect(sidebar?.width ?? 0).toBeGreaterThan(100);
  });

  it('shows none of the vendor menus (Developer Tools, Configure, Share, Deploy)', async () => {
    for (const label of ['Developer Tools', 'Configure', 'Share', 'Deploy']) {
      expect(await page.getByText(label, { exact: true }).filter({ visible: true }).count(), label).toBe(0);
    }
  });

  it('/favicon.ico is an icon the browser accepts', async () => {
    const res = await page.request.get(`${origin}/favicon.ico`);
    expect(res.status()).toBe(200);
    expect(res.headers()['content-type']).toBe('image/x-icon');
    const decoded = await page.evaluate(async (url) => {
      const img = new Image();
      img.src = url;
      await img.decode();
      return { w: img.naturalWidth, h: img.naturalHeight };
    }, `${origin}/favicon.ico`);
    expect(decoded).toEqual({ w: 16, h: 16 });
  });
});
