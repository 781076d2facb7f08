/**
 * The console's browser-test harness (issue 25): a real node from createTestApp listening on
 * loopback (opened as http://localhost:<port>, a secure context where __Host- cookies work), Debian's
 * Chromium through playwright-core, and the checks every console test makes:
 *
 * - CSP: every `securitypolicyviolation` event and every csp-violation report (ReportingObserver,
 *   which also sees violations of elements not in the document) is sent to the test through a
 *   CDP binding, with every browser console message that names a Content Security Policy or
 *   Trusted Types; `expectNoCspViolations()` asserts there were none.
 * - Accessibility: axe-core runs in an ISOLATED WORLD of the page (CDP Page.createIsolatedWorld):
 *   it shares the DOM but not the page's script context, so injecting its source needs neither a
 *   script element (which the console's CSP would refuse) nor turning the CSP off; the page keeps
 *   its real policy throughout. `expectAccessible()` asserts no serious or critical violation.
 * - Screenshots: `shoot(page, name)` saves test-artifacts/console/<name>-desktop.png (1280x800) and
 *   <name>-phone.png (390x844) (gitignored; the README shows two, copied into docs/img/).
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Secret, TOTP } from 'otpauth';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { expect } from 'vitest';
import { createTestApp, type TestApp, type TestAppOptions } from '../support/app.ts';
import { freePort, launchChromium } from '../support/browser.ts';
import { TEST_PASSWORD, type SignedInUser } from '../support/users.ts';

export const ARTIFACTS = fileURLToPath(new URL('../../test-artifacts/console/', import.meta.url));
export const DESKTOP = { width: 1280, height: 800 } as const;
export const PHONE = { width: 390, height: 844 } as const;

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

export interface CspReport {
  directive: string;
  blocked: string;
  sample: string;
  source?: string;
}

export interface ConsoleRig {
  t: TestApp;
  origin: string;
  browser: Browser;
  /** Violations and CSP/Trusted Types console messages seen in every context made by newContext. */
  csp: CspReport[];
  /** A browser context (its own cookies) wired to report CSP violations. */
  newContext: (options?: { viewport?: { width: number; height: number } }) => Promise<BrowserContext>;
  close: () => Promise<void>;
}

/** Starts a node listening on loopback and Chromium. */
export async function startConsoleRig(options: TestAppOptions = {}): Promise<ConsoleRig> {
  const port = await freePort();
  const origin = `http://localhost:${port}`;
  const t = await createTestApp({
    logLevel: 'silent',
    ...options,
    overrides: { 'rateLimit.enabled': false, 'server.publicUrl': origin, 'server.port': port, ...options.overrides },
  });
  await t.app.listen({ host: '127.0.0.1', port });
  const browser = await launchChromium();
  const csp: CspReport[] = [];
  const newContext = async (opts: { viewport?: { width: number; height: number } } = {}) => {
    const context = await browser.newContext({ viewport: opts.viewport ?? DESKTOP });
    await context.exposeBinding('__ghCspReport', (_source, report: CspReport) => void csp.push(report));
    await context.addInitScript(() => {
      const report = (window as unknown as { __ghCspReport: (r: unknown) => void }).__ghCspReport;
      document.addEventListener('securitypolicyviolation', (e) => report({ directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample, source: e.sourceFile }));
      new ReportingObserver(
        (reports) => {
          for (const r of reports) {
            const body = r.body as unknown as { effectiveDirective: string; blockedURL: string; sample: string; sourceFile: string };
            report({ directive: body.effectiveDirective, blocked: body.blockedURL, sample: body.sample, source: body.sourceFile });
          }
        },
        { types: ['csp-violation'], buffered: true },
      ).observe();
    });
    context.on('console', (m) => {
      if (/Content Security Policy|Trusted Type/i.test(m.text())) csp.push({ directive: 'console', blocked: '', sample: m.text() });
    });
    return context;
  };
  return {
    t,
    origin,
    browser,
    csp,
    newContext,
    close: async () => {
      await browser.close();
      await t.close();
    },
  };
}

/** Asserts the browser reported no CSP or Trusted Types violation so far. */
export function expectNoCspViolations(rig: ConsoleRig): void {
  expect(rig.csp).toEqual([]);
}

export interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  targets: string[];
}

/**
 * Runs axe-core (WCAG 2.x A and AA rules) on the page as it is now, in an isolated world, and
 * returns every violation.
 */
export async function runAxe(page: Page): Promise<AxeViolation[]> {
  const cdp = await page.context().newCDPSession(page);
  try {
    const { frameTree } = await cdp.send('Page.getFrameTree');
    const { executionContextId } = await cdp.send('Page.createIsolatedWorld', { frameId: frameTree.frame.id, worldName: 'gatehouse-axe' });
    const loaded = await cdp.send('Runtime.evaluate', { expression: AXE_SOURCE, contextId: executionContextId });
    if (loaded.exceptionDetails) throw new Error(`axe-core did not load: ${loaded.exceptionDetails.text}`);
    const run = `axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] } })
      .then((r) => JSON.stringify(r.violations.map((v) => ({ id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map((n) => String(n.target)) }))))`;
    const result = await cdp.send('Runtime.evaluate', { expression: run, contextId: executionContextId, awaitPromise: true, returnByValue: true });
    if (result.exceptionDetails) throw new Error(`axe-core failed: ${result.exceptionDetails.text}`);
    return JSON.parse(String(result.result.value)) as AxeViolation[];
  } finally {
    await cdp.detach();
  }
}

/** Asserts axe-core finds no serious or critical violation on the page as it is now. */
export async function expectAccessible(page: Page): Promise<void> {
  const violations = await runAxe(page);
  expect(violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')).toEqual([]);
}

/** Saves the page at desktop and phone widths (full page) and restores the viewport it had. */
export async function shoot(page: Page, name: string): Promise<void> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const before = page.viewportSize() ?? DESKTOP;
  for (const [suffix, size] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(size);
    await page.screenshot({ path: `${ARTIFACTS}${name}-${suffix}.png`, fullPage: true });
  }
  await page.setViewportSize(before);
}

/** Signs in through the console's own sign-in form (password, no second factor). */
export async function signInThroughConsole(page: Page, origin: string, email: string, password: string = TEST_PASSWORD): Promise<void> {
  await page.goto(`${origin}/console/sign-in`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
}

/** Enrols an authenticator app for the user through the API (confirmed with the previous time step's code). */
export async function enrolTotp(t: TestApp, user: SignedInUser): Promise<{ factorId: string; totp: TOTP }> {
  const start = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp', headers: user.auth, payload: { password: TEST_PASSWORD } });
  const { factorId, otpauthUri } = start.json<{ factorId: string; otpauthUri: string }>();
  const totp = new TOTP({ secret: Secret.fromBase32(new URL(otpauthUri).searchParams.get('secret') ?? ''), algorithm: 'SHA1', digits: 6, period: 30 });
  const confirmed = await t.app.inject({ method: 'POST', url: '/v1/me/mfa/totp/confirm', headers: user.auth, payload: { factorId, code: totp.generate({ timestamp: Date.now() - 30_000 }) } });
  expect(confirmed.statusCode).toBe(200);
  return { factorId, totp };
}

/** Signs in through the console's sign-in form with the password and the authenticator app's current code. */
export async function signInWithTotpThroughConsole(page: Page, origin: string, email: string, totp: TOTP): Promise<void> {
  await page.goto(`${origin}/console/sign-in`);
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await page.getByLabel('Six-digit code').fill(totp.generate());
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('heading', { level: 1, name: 'Your account' }).waitFor();
}
