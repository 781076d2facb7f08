/**
 * A real SoftHSM2 token per test run (DATA-1, the PKCS#11 adapter): a private token directory
 * under the OS temp dir, its own SOFTHSM2_CONF, and `softhsm2-util --init-token --free` with a
 * fresh label, user PIN and SO PIN, so runs never share a token. Missing softhsm2 skips with a
 * message in a plain local run and fails in CI (.ci/run installs it).
 *
 * SoftHSM reads SOFTHSM2_CONF when the module initializes, once per process (vitest runs each
 * file in its own process), so a file sets it up once in beforeAll and makes every token it
 * needs in that one directory.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { inCi } from './services.ts';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
const present = existsSync(SOFTHSM_MODULE) && existsSync('/usr/bin/softhsm2-util');

/** Why a SoftHSM suite is skipped here (softhsm2 missing outside CI), or undefined. */
export const softhsmSkipReason: string | undefined = present || inCi ? undefined : 'softhsm2 is not installed (CI installs it; locally: apt-get install softhsm2)';

export interface SoftHsm {
  dir: string;
  tokenDir: string;
  /** Initializes a new token; returns its label and PINs. */
  initToken(prefix?: string): { label: string; pin: string; soPin: string };
  cleanup(): Promise<void>;
}

export async function startSoftHsm(): Promise<SoftHsm> {
  if (!present) throw new Error(`softhsm2 is missing (${SOFTHSM_MODULE}) but CI is set: .ci/run must install softhsm2`);
  const dir = await mkdtemp(join(tmpdir(), 'gh-softhsm-'));
  const tokenDir = join(dir, 'tokens');
  execFileSync('mkdir', ['-m', '700', tokenDir]);
  const conf = join(dir, 'softhsm2.conf');
  await writeFile(conf, `directories.tokendir = ${tokenDir}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = conf;
  return {
    dir,
    tokenDir,
    initToken(prefix = 'gh') {
      const label = `${prefix}-${randomBytes(4).toString('hex')}`;
      const pin = randomBytes(6).toString('hex');
      const soPin = randomBytes(6).toString('hex');
      execFileSync('softhsm2-util', ['--init-token', '--free', '--label', label, '--pin', pin, '--so-pin', soPin], { env: { ...process.env, SOFTHSM2_CONF: conf }, stdio: 'pipe' });
      return { label, pin, soPin };
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}
