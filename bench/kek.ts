/**
 * KEK benchmark (DATA-1): what one data-key cache miss costs, by KEK source.
 *
 *   npm run bench:kek
 *
 * A cache miss unwraps one wrapped data key. `file` (the local key file or GATEHOUSE_MASTER_KEYS:
 * the KEK bytes are in this process) is `unwrapKey` with AES-256-GCM here; `kms` is the KMS
 * adapter's Decrypt call (AWS JSON 1.1, SigV4 signed, over loopback HTTP) to the local server in
 * the KMS's documented shape (test/support/fake-kms.ts) in this same process: no TLS and no
 * network round trip, so a real KMS (one region away: milliseconds) costs much more; this figure
 * is the adapter's own floor. `pkcs11` is the PKCS#11 adapter's C_DecryptInit + C_Decrypt (AES-GCM)
 * in a SoftHSM2 token made for this run (a software token in this process: a network HSM adds its
 * round trip), skipped with a message when softhsm2 is not installed. Bounded by counts:
 * BENCH_FILE_UNWRAPS (default 20000), BENCH_KMS_UNWRAPS (default 500), BENCH_PKCS11_UNWRAPS
 * (default 2000), sequential; every unwrap checks it got the key back.
 */
import { randomBytes } from 'node:crypto';
import { unwrapKey, wrapKey } from '../src/crypto/envelope.ts';
import { createPkcs11KekSource } from '../src/crypto/pkcs11-kek.ts';
import { fakeKms, kmsSource, arn } from '../test/support/fake-kms.ts';
import { SOFTHSM_MODULE, softhsmSkipReason, startSoftHsm } from '../test/support/softhsm.ts';

const count = (name: string, fallback: number): number => {
  const n = Number(process.env[name] ?? fallback);
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) throw new Error(`${name} must be an integer in [1, 1000000]`);
  return n;
};
const FILE_UNWRAPS = count('BENCH_FILE_UNWRAPS', 20_000);
const KMS_UNWRAPS = count('BENCH_KMS_UNWRAPS', 500);
const PKCS11_UNWRAPS = count('BENCH_PKCS11_UNWRAPS', 2000);

/** µs per unwrap through a SoftHSM2 token, or undefined when softhsm2 is not installed. */
async function pkcs11Us(dek: Buffer, aad: Buffer): Promise<number | undefined> {
  if (softhsmSkipReason !== undefined) return undefined;
  const hsm = await startSoftHsm();
  try {
    const token = hsm.initToken('gh-bench');
    const source = createPkcs11KekSource({ module: SOFTHSM_MODULE, tokenLabel: token.label, pin: token.pin, keyLabel: 'bench' });
    await source.addVersion!();
    const wrapped = await source.wrap(1, dek, aad);
    for (let i = 0; i < 50; i++) await source.unwrap(1, wrapped, aad);
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PKCS11_UNWRAPS; i++) if (!(await source.unwrap(1, wrapped, aad)).equals(dek)) throw new Error('pkcs11: wrong key');
    const us = Number(process.hrtime.bigint() - t0) / 1000 / PKCS11_UNWRAPS;
    await source.close();
    return us;
  } finally {
    await hsm.cleanup();
  }
}

async function main(): Promise<void> {
  const dek = randomBytes(32);
  const aad = Buffer.from('gatehouse.dek.v1\nbench\ntenant\n\n1', 'utf8');

  const kek = randomBytes(32);
  const wrapped = wrapKey(kek, dek, aad);
  for (let i = 0; i < 200; i++) unwrapKey(kek, wrapped, aad);
  let t0 = process.hrtime.bigint();
  for (let i = 0; i < FILE_UNWRAPS; i++) if (!unwrapKey(kek, wrapped, aad).equals(dek)) throw new Error('file: wrong key');
  const fileUs = Number(process.hrtime.bigint() - t0) / 1000 / FILE_UNWRAPS;

  const kms = fakeKms();
  await kms.listen();
  try {
    const source = kmsSource(kms, { 1: arn(1) });
    const kmsWrapped = await source.wrap(1, dek, aad);
    for (let i = 0; i < 20; i++) await source.unwrap(1, kmsWrapped, aad);
    t0 = process.hrtime.bigint();
    for (let i = 0; i < KMS_UNWRAPS; i++) if (!(await source.unwrap(1, kmsWrapped, aad)).equals(dek)) throw new Error('kms: wrong key');
    const kmsUs = Number(process.hrtime.bigint() - t0) / 1000 / KMS_UNWRAPS;
    console.log(`file: ${fileUs.toFixed(1)} µs per unwrap (${FILE_UNWRAPS} unwraps)`);
    console.log(`kms (loopback, adapter floor): ${kmsUs.toFixed(1)} µs per unwrap (${KMS_UNWRAPS} unwraps)`);
    console.log(`ratio kms/file: ${(kmsUs / fileUs).toFixed(0)}x`);
    const p11Us = await pkcs11Us(dek, aad);
    if (p11Us === undefined) console.log(`pkcs11: not measured (${softhsmSkipReason})`);
    else {
      console.log(`pkcs11 (SoftHSM2, in process): ${p11Us.toFixed(1)} µs per unwrap (${PKCS11_UNWRAPS} unwraps)`);
      console.log(`ratio pkcs11/file: ${(p11Us / fileUs).toFixed(0)}x`);
    }
    console.log(`load: ${(await import('node:fs')).readFileSync('/proc/loadavg', 'utf8').trim()}`);
  } finally {
    await kms.stop();
  }
}

await main();
