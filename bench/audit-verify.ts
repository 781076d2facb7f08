/**
 * Audit verifier benchmark: offline verification of a large export against raw SHA-256 hashing
 * of the same bytes.
 *
 *   npm run bench:audit-verify
 *
 * One thread. The export is generated first, by a child process so that its garbage does not
 * count in this process's peak RSS, into a temporary file (deleted at the end): BENCH_EVENTS events (default 1,000,000) shaped like the server's (seq, log, time, actor,
 * action, target, ip, ua, requestId), a checkpoint every 1,000 events signed with a real Ed25519
 * key and chained, the end line. Then, with the file in the page cache:
 *
 * - raw: the file streamed through one `createHash('sha256')`, 64 KiB chunks.
 * - verify: `verifyExport` on the same file, same chunking: per event a JSON parse, the
 *   sequence checks, a canonical-form check, the leaf hash and the frontier update; per
 *   checkpoint a schema check, an Ed25519 verification, the chain hash and the root.
 *
 * - tree only (reference): the same file cut into lines and each event's text appended to a
 *   `MerkleFrontier` (its leaf hash and, amortised, one node hash), with no parsing and no
 *   checks. It is the floor of any verifier that rebuilds the RFC 6962 tree in this runtime:
 *   two one-shot SHA-256 calls per event, each costing far more in call overhead than hashing
 *   the event's ~350 bytes, which is what the raw pass measures.
 *
 * Sequence: one discarded raw pass, then BENCH_ROUNDS (default 2) rounds of raw then verify;
 * each figure is the mean over the rounds. Ratio = verify throughput / raw throughput (MB/s over
 * MB/s); the target (>= 0.5) is reported, not enforced. maxRSS is printed before and after the
 * verify passes to show the verifier's memory does not grow with the file. Exits non-zero when
 * the untouched export does not verify or the run exceeds its deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '../src/crypto/signing.ts';
import { MerkleFrontier } from '../src/audit/merkle.ts';
import { verifyExport } from '../src/audit/verify.ts';
import { exportLines } from '../test/audit/export-fixture.ts';

const TARGET_RATIO = 0.5;
const CHUNK = 64 * 1024;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const EVERY = 1000;
const DEADLINE_MS = 110_000;

if (process.argv[2] === '--generate') {
  await generateInto(process.argv[3] as string);
  process.exit(0);
}

const dir = mkdtempSync(join(tmpdir(), 'gh-audit-bench-'));
const file = join(dir, 'export.jsonl');
const cleanup = (): void => rmSync(dir, { recursive: true, force: true });
let generator: ChildProcess | null = null;
const deadline = setTimeout(() => {
  generator?.kill();
  console.error(`FAILED: the benchmark did not finish within ${DEADLINE_MS / 1000} s`);
  cleanup();
  process.exit(2);
}, DEADLINE_MS);

const mb = (bytes: number): number => bytes / (1024 * 1024);
const maxRssMb = (): string => (process.resourceUsage().maxRSS / 1024).toFixed(0);
const rssMb = (): string => mb(process.memoryUsage().rss).toFixed(0);

async function generateInto(path: string): Promise<void> {
  const out = createWriteStream(path);
  let batch = '';
  for (const line of exportLines({ key: generateSigningKey(), events: EVENTS, every: EVERY })) {
    batch += line;
    if (batch.length >= 1 << 20) {
      if (!out.write(batch)) await once(out, 'drain');
      batch = '';
    }
  }
  out.end(batch);
  await once(out, 'finish');
}

async function generate(): Promise<number> {
  generator = spawn(process.execPath, [fileURLToPath(import.meta.url), '--generate', file], { stdio: 'inherit' });
  const [code] = (await once(generator, 'exit')) as [number | null];
  generator = null;
  if (code !== 0) throw new Error(`generating the export failed (exit ${code})`);
  return statSync(file).size;
}

async function hashRaw(): Promise<number> {
  const started = performance.now();
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) hash.update(chunk as Buffer);
  hash.digest();
  return performance.now() - started;
}

async function buildTreeOnly(): Promise<number> {
  const started = performance.now();
  const tree = new MerkleFrontier();
  let carry = '';
  for await (const chunk of createReadStream(file, { highWaterMark: CHUNK, encoding: 'utf8' })) {
    const text = carry + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (text.startsWith('{"event":', start)) tree.appendText(text.slice(start + 9, text.lastIndexOf(',"index":', nl)));
      start = nl + 1;
    }
    carry = text.slice(start);
  }
  tree.root();
  if (tree.size !== EVENTS) throw new Error(`tree-only pass read ${tree.size} events`);
  return performance.now() - started;
}

async function verify(): Promise<number> {
  const started = performance.now();
  const report = await verifyExport(createReadStream(file, { highWaterMark: CHUNK }));
  const ms = performance.now() - started;
  if (!report.ok || report.events !== EVENTS) {
    console.error(`FAILED: the untouched export does not verify: ${JSON.stringify(report.problem ?? report)}`);
    cleanup();
    process.exit(1);
  }
  return ms;
}

try {
  const genStart = performance.now();
  const bytes = await generate();
  console.log(`export: ${EVENTS.toLocaleString('en')} events, ${(EVENTS / EVERY).toLocaleString('en')} checkpoints, ${mb(bytes).toFixed(1)} MB, generated in ${((performance.now() - genStart) / 1000).toFixed(1)} s`);

  await hashRaw();
  const rss = [`before: ${maxRssMb()} MB (rss ${rssMb()} MB)`];
  const raw: number[] = [];
  const ver: number[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    raw.push(await hashRaw());
    ver.push(await verify());
    rss.push(`after verify pass ${round + 1}: ${maxRssMb()} MB (rss ${rssMb()} MB)`);
  }
  const treeMs = await buildTreeOnly();
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rawMs = mean(raw);
  const verMs = mean(ver);
  const rawMbs = mb(bytes) / (rawMs / 1000);
  const verMbs = mb(bytes) / (verMs / 1000);
  const ratio = verMbs / rawMbs;
  console.log(`raw sha-256: ${rawMbs.toFixed(0)} MB/s (${rawMs.toFixed(0)} ms per pass, ${(EVENTS / (rawMs / 1000)).toFixed(0)} events/s equivalent)`);
  console.log(`verify:      ${verMbs.toFixed(1)} MB/s (${verMs.toFixed(0)} ms per pass, ${(EVENTS / (verMs / 1000)).toFixed(0)} events/s)`);
  console.log(`ratio verify/raw: ${ratio.toFixed(3)} (target >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})`);
  const treeMbs = mb(bytes) / (treeMs / 1000);
  console.log(`tree only:   ${treeMbs.toFixed(1)} MB/s (${treeMs.toFixed(0)} ms, ${(EVENTS / (treeMs / 1000)).toFixed(0)} events/s; ratio to raw ${(treeMbs / rawMbs).toFixed(3)}: the floor for rebuilding the tree)`);
  console.log(`maxRSS ${rss.join('; ')}`);
} finally {
  cleanup();
  clearTimeout(deadline);
}
