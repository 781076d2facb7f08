/**
 * Debian's Chromium for the browser tests, through playwright-core: where it lives, why a suite
 * skips without it (only outside CI: .ci/run installs it, so CI fails instead of skipping), and
 * one launch with the flags this closed network needs (no background connections to refuse).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { inCi } from './services.ts';

export { freePort } from './private-services.ts';

export const CHROMIUM = '/usr/bin/chromium';

const present = existsSync(CHROMIUM);

/** Why a browser suite is skipped here (Chromium missing outside CI), or undefined. */
export const chromiumSkipReason: string | undefined = present || inCi ? undefined : `${CHROMIUM} is not installed (CI installs it; locally: apt-get install chromium)`;

/**
 * Launches headless Chromium; throws in CI when it is missing.
 * @example const browser = await launchChromium(); ... await browser.close()
 */
export async function launchChromium(): Promise<Browser> {
  if (!present) throw new Error(`${CHROMIUM} is missing but CI is set: .ci/run must install chromium`);
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}
