/**
 * Crypto benchmark: what the envelope layer costs per sealed value, compared with bare
 * node:crypto AES-256-GCM.
 *
 *   npm run bench:crypto
 *
 * One process, one thread, 1 KiB values. An operation is one seal plus one open of the value.
 *
 * - envelope: the keyring's warm path. A Map lookup for the DEK (the keyring's DEK cache), then
 *   `sealWithKey` (header, AAD encoding, random nonce, AES-256-GCM, base64url `gh1.` text); a Map
 *   lookup again, then `openWithKey` (strict decode, AAD encoding, authenticated decrypt).
 * - raw: `createCipheriv('aes-256-gcm')` with the 32-byte key Buffer, a random 96-bit nonce, an
 *   AAD of the same length as the envelope's, update/final/getAuthTag; then `createDecipheriv`,
 *   setAAD, setAuthTag, update/final. Buffers only: no header, no text encoding.
 * - raw-keyobject (reference): the same with a prebuilt `KeyObject` instead of the key Buffer.
 *   Node spends ~10x more in createCipheriv with a Buffer key than with a KeyObject, and
 *   aead.ts caches a KeyObject per key Buffer, so the envelope path can beat plain `raw`; this
 *   line shows what the envelope format itself (header, AAD, base64url text, strict decoding)
 *   costs over the fastest bare path.
 *
 * Sequence: a short warm-up of each (discarded), then measured runs alternating raw,
 * raw-keyobject, envelope, raw, ...; the figure of each is its mean over the runs. Every batch
 * checks that the opened value equals the input, so the work cannot be optimized away or
 * silently wrong. The ratio target (envelope/raw >= 0.8) is reported, not enforced. Exits
 * non-zero on a wrong round-trip or when the whole run exceeds its deadline.
 *
 * Knobs (environment): BENCH_SECONDS (one measured run, default 2.5), BENCH_ROUNDS (measured
 * pairs, default 2), BENCH_WARMUP_SECONDS (default 0.5).
 */
import { createCipheriv, createDecipheriv, createSecretKey, randomBytes, randomUUID } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import { cpus } from 'node:os';
import { decodeEnvelope, envelopeAad, openWithKey, sealWithKey } from '../src/crypto/envelope.ts';
import type { EnvelopeHeader, SealContext } from '../src/crypto/envelope.ts';
import { envSeconds } from './env.ts';

const TARGET_RATIO = 0.8;
const VALUE_BYTES = 1024;
const BATCH = 256;

const measuredSeconds = envSeconds('BENCH_SECONDS', 2.5);
const warmupSeconds = envSeconds('BENCH_WARMUP_SECONDS', 0.5);
const rounds = Math.round(envSeconds('BENCH_ROUNDS', 2));
/** The whole run is stopped (exit 2) past this. */
const deadlineMs = (3 * warmupSeconds + 3 * rounds * measuredSeconds) * 1000 + 15_000;
const deadline = setTimeout(() => {
  console.error(`FAILED: the benchmark did not finish within ${(deadlineMs / 1000).toFixed(0)} s`);
  process.exit(2);
}, deadlineMs);

// --- fixtures --------------------------------------------------------------------------------

const header: EnvelopeHeader = { kekVersion: 3, dekId: randomUUID() };
const ctx: SealContext = {
  tenantId: randomUUID(),
  subjectId: randomUUID(),
  table: 'user_profiles',
  column: 'phone_number',
  rowId: randomUUID(),
};
/** The keyring's warm DEK cache: id -> key. A few entries, as after some traffic. */
const dekCache = new Map<string, Buffer>();
for (let i = 0; i < 64; i++) dekCache.set(randomUUID(), randomBytes(32));
dekCache.set(header.dekId, randomBytes(32));
const plaintext = randomBytes(VALUE_BYTES);

const sampleAad = envelopeAad(decodeEnvelope(sealWithKey(dekCache.get(header.dekId) as Buffer, header, ctx, plaintext)).headerBytes, ctx);
const rawKey = randomBytes(32);
const rawKeyObject = createSecretKey(Buffer.from(rawKey));
const rawAad = randomBytes(sampleAad.length);

// --- the two operations ----------------------------------------------------------------------

function envelopeOp(): Buffer {
  const sealKey = dekCache.get(header.dekId);
  if (sealKey === undefined) throw new Error('DEK cache miss');
  const text = sealWithKey(sealKey, header, ctx, plaintext);
  const openKey = dekCache.get(header.dekId);
  if (openKey === undefined) throw new Error('DEK cache miss');
  return openWithKey(openKey, text, ctx);
}

function rawWith(key: Buffer | KeyObject): Buffer {
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  cipher.setAAD(rawAad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const tag = cipher.getAuthTag();
  const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 });
  decipher.setAAD(rawAad);
  decipher.setAuthTag(tag);
  return Buffer.concat([decipher.update(ciphertext), decipher.final()]);
}

type Target = 'raw' | 'raw-keyobject' | 'envelope';
const TARGETS: readonly Target[] = ['raw', 'raw-keyobject', 'envelope'];
const ops: Record<Target, () => Buffer> = {
  raw: () => rawWith(rawKey),
  'raw-keyobject': () => rawWith(rawKeyObject),
  envelope: envelopeOp,
};

function run(target: Target, seconds: number): { ops: number; seconds: number; opsPerSec: number } {
  const op = ops[target];
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let count = 0;
  let elapsed: bigint;
  do {
    let last: Buffer | undefined;
    for (let i = 0; i < BATCH; i++) last = op();
    if (last === undefined || !last.equals(plaintext)) throw new Error(`${target}: the opened value differs from the input`);
    count += BATCH;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  const secs = Number(elapsed) / 1e9;
  return { ops: count, seconds: secs, opsPerSec: count / secs };
}

// --- main ------------------------------------------------------------------------------------

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

try {
  console.log(
    `crypto benchmark: seal+open of ${VALUE_BYTES} B values, AAD ${rawAad.length} B, warm-up ${warmupSeconds} s, ${rounds} x ${measuredSeconds} s measured per target`,
  );
  console.log(`node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? 'unknown'})`);
  for (const target of TARGETS) run(target, warmupSeconds);

  const totals: Record<Target, number[]> = { raw: [], 'raw-keyobject': [], envelope: [] };
  console.log('');
  console.log('run                   ops/s        ops   seconds    µs/op');
  for (let r = 1; r <= rounds; r++) {
    for (const target of TARGETS) {
      const result = run(target, measuredSeconds);
      totals[target].push(result.opsPerSec);
      console.log(
        `${`${target} #${r}`.padEnd(18)} ${fmt(result.opsPerSec).padStart(9)} ${fmt(result.ops).padStart(10)} ${result.seconds.toFixed(2).padStart(9)} ${(1e6 / result.opsPerSec).toFixed(2).padStart(8)}`,
      );
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const raw = mean(totals.raw);
  const rawKo = mean(totals['raw-keyobject']);
  const envelope = mean(totals.envelope);
  const ratio = envelope / raw;
  const line = (label: string, opsPerSec: number): void =>
    console.log(`${label.padEnd(44)} ${fmt(opsPerSec).padStart(9)} ops/s  ${(1e6 / opsPerSec).toFixed(2).padStart(7)} µs/op`);
  console.log('');
  console.log(`means of ${rounds} runs each:`);
  line('raw node:crypto AES-256-GCM (Buffer key)', raw);
  line('raw node:crypto AES-256-GCM (KeyObject)', rawKo);
  line('envelope (Map get + sealWithKey/openWithKey)', envelope);
  console.log(`ratio envelope/raw            ${ratio.toFixed(2)}   target >= ${TARGET_RATIO.toFixed(2)}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'}`);
  console.log(
    `ratio envelope/raw-keyobject  ${(envelope / rawKo).toFixed(2)}   (the envelope format's own cost: ${(1e6 / envelope - 1e6 / rawKo).toFixed(2)} µs per seal+open)`,
  );
} catch (err) {
  console.error('FAILED:', err instanceof Error ? err.message : err);
  process.exitCode = 1;
} finally {
  clearTimeout(deadline);
}
