/**
 * Audit verifier benchmark: offline verification of a large export against raw SHA-256 hashing
 * of the same bytes.
 *
 *   npm run bench:audit-verify
 *
 * The export is generated first, by a child process so that its garbage does not
 * count in this process's peak RSS, into a temporary file (deleted at the end): BENCH_EVENTS events (default 1,000,000) shaped like the server's (seq, log, time, actor,
 * action, target, ip, ua, requestId), a checkpoint every 1,000 events signed with a real Ed25519
 * key and chained, the end line. Then, with the file in the page cache:
 *
 * - raw: the file streamed through one `createHash('sha256')`, 64 KiB chunks.
 * - verify: `verifyExport` on the same file, same chunking, with its defaults (two worker
 *   threads on a machine with two or more CPUs; BENCH_THREADS overrides): per event the
 *   single-pass canonical scan (verify-scan.ts), the sequence checks, the leaf hash from the
 *   line's own bytes and the aligned subtree heads, put together on the main thread; per
 *   checkpoint a schema check, an Ed25519 verification, the chain hash and the root.
 * - verify, one thread (reference): the same with `threads: 0`.
 * - hash floor, one thread (reference): the same file's event lines hashed as the verifier
 *   does (leaf from the line's bytes, aligned subtree heads) with no scanning and no checks:
 *   two one-shot SHA-256 calls per event, each costing more in call overhead than hashing the
 *   event's ~350 bytes, which is what the raw pass measures.
 *
 * Each pass also reports the process's CPU time (all threads), steadier than wall time on a
 * shared machine, and the load average is printed before and after.
 *
 * Sequence: one discarded raw pass, then BENCH_ROUNDS (default 2) rounds of raw then verify;
 * each figure is the mean over the rounds. Ratio = verify throughput / raw throughput (MB/s over
 * MB/s); the target (>= 0.5) is reported, not enforced. maxRSS is printed before and after the
 * verify passes to show the verifier's memory does not grow with the file. Exits non-zero when
 * the untouched export does not verify or the run exceeds its deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, hash } from 'node:crypto';
import { createReadStream, createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { once } from 'node:events';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateSigningKey } from '../src/crypto/signing.ts';
import { AlignedSubtrees, MerkleFrontier } from '../src/audit/merkle.ts';
import { verifyExport } from '../src/audit/verify.ts';
import { exportLines } from '../test/audit/export-fixture.ts';

const TARGET_RATIO = 0.5;
const CHUNK = 64 * 1024;
const EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const EVERY = 1000;
const THREADS = process.env.BENCH_THREADS === undefined ? undefined : Number(process.env.BENCH_THREADS);
const DEADLINE_MS = 150_000;

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

/**
 * The cost of one node:crypto one-shot SHA-256 call, for an interior node's input (65 bytes) and an
 * event-sized leaf (351 bytes, from a buffer slice as the verifier hashes it), with the digest as a
 * latin1 string (what the verifier uses) and as a Buffer. Median of five rounds of 200,000 calls.
 */
function perCallHash(): string {
  const node = Buffer.alloc(65, 1);
  const file = Buffer.alloc(1 << 20, 3);
  const time = (fn: () => unknown): number => {
    const rounds: number[] = [];
    for (let r = 0; r < 5; r++) {
      const start = process.hrtime.bigint();
      for (let i = 0; i < 200_000; i++) fn();
      rounds.push(Number(process.hrtime.bigint() - start) / 200_000);
    }
    return rounds.sort((a, b) => a - b)[2] ?? 0;
  };
  time(() => hash('sha256', node, 'binary'));
  const parts = [
    `65 B → latin1 string ${time(() => hash('sha256', node, 'binary')).toFixed(0)} ns`,
    `65 B → Buffer ${time(() => hash('sha256', node, 'buffer')).toFixed(0)} ns`,
    `351 B slice → latin1 string ${time(() => hash('sha256', file.subarray(1000, 1351), 'binary')).toFixed(0)} ns`,
  ];
  return parts.join(', ');
}

const mb = (bytes: number): number => bytes / (1024 * 1024);
const maxRssMb = (): string => (process.resourceUsage().maxRSS / 1024).toFixed(0);
const rssMb = (): string => mb(process.memoryUsage().rss).toFixed(0);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');
const cpuMs = (): number => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};

interface Pass {
  ms: number;
  cpu: number;
}

async function timed(run: () => Promise<void>): Promise<Pass> {
  const cpu = cpuMs();
  const started = performance.now();
  await run();
  return { ms: performance.now() - started, cpu: cpuMs() - cpu };
}

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

async function hashRaw(): Promise<Pass> {
  return timed(async () => {
    const hash = createHash('sha256');
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) hash.update(chunk as Buffer);
    hash.digest();
  });
}

/** The verifier's hashing alone, on one thread: leaves from the lines' bytes, aligned subtree heads, the frontier. */
async function hashFloor(): Promise<Pass> {
  return timed(async () => {
    const tree = new MerkleFrontier();
    const subtrees = new AlignedSubtrees();
    subtrees.reset(0);
    let carry = Buffer.alloc(0);
    let index = 0;
    for await (const chunk of createReadStream(file, { highWaterMark: CHUNK })) {
      const bytes = carry.length === 0 ? (chunk as Buffer) : Buffer.concat([carry, chunk as Buffer]);
      let start = 0;
      for (let nl = bytes.indexOf(10); nl >= 0; nl = bytes.indexOf(10, start)) {
        if (bytes[start + 2] === 0x65 && bytes[start + 3] === 0x76) {
          // `{"event":` then the event, then `,"index":<n>,"type":"event"}`.
          const at = start + 8;
          bytes[at] = 0;
          subtrees.appendLeafInput(bytes.subarray(at, nl - 25 - String(index).length));
          index += 1;
        }
        start = nl + 1;
      }
      carry = Buffer.from(bytes.subarray(start));
    }
    const { heads, heights } = subtrees.finish();
    heights.forEach((h, i) => tree.appendSubtree(heads.subarray(i * 32, i * 32 + 32), h));
    tree.root();
    if (tree.size !== EVENTS) throw new Error(`the hash-floor pass read ${tree.size} events`);
  });
}

async function verify(threads: number | undefined): Promise<Pass> {
  return timed(async () => {
    const report = await verifyExport(createReadStream(file, { highWaterMark: CHUNK }), threads === undefined ? {} : { threads });
    if (!report.ok || report.events !== EVENTS) {
      console.error(`FAILED: the untouched export does not verify: ${JSON.stringify(report.problem ?? report)}`);
      cleanup();
      process.exit(1);
    }
  });
}

try {
  const genStart = performance.now();
  const bytes = await generate();
  console.log(`export: ${EVENTS.toLocaleString('en')} events, ${(EVENTS / EVERY).toLocaleString('en')} checkpoints, ${mb(bytes).toFixed(1)} MB, generated in ${((performance.now() - genStart) / 1000).toFixed(1)} s`);

  console.log(`load average before: ${load()}`);
  await hashRaw();
  const rss = [`before: ${maxRssMb()} MB (rss ${rssMb()} MB)`];
  const raw: Pass[] = [];
  const ver: Pass[] = [];
  for (let round = 0; round < ROUNDS; round += 1) {
    raw.push(await hashRaw());
    ver.push(await verify(THREADS));
    rss.push(`after verify pass ${round + 1}: ${maxRssMb()} MB (rss ${rssMb()} MB)`);
  }
  const one = await verify(0);
  const floor = await hashFloor();
  const mean = (xs: Pass[]): Pass => ({ ms: xs.reduce((a, b) => a + b.ms, 0) / xs.length, cpu: xs.reduce((a, b) => a + b.cpu, 0) / xs.length });
  const rawPass = mean(raw);
  const verPass = mean(ver);
  const mbs = (p: Pass): number => mb(bytes) / (p.ms / 1000);
  const line = (name: string, p: Pass): string =>
    `${name.padEnd(22)} ${mbs(p).toFixed(1).padStart(7)} MB/s (${p.ms.toFixed(0)} ms per pass, ${(EVENTS / (p.ms / 1000)).toFixed(0)} events/s; CPU ${(p.cpu / 1000).toFixed(2)} s, ${((p.cpu * 1000) / EVENTS).toFixed(2)} µs per event)`;
  const ratio = mbs(verPass) / mbs(rawPass);
  console.log(line('raw sha-256:', rawPass));
  console.log(line(`verify (threads ${THREADS ?? 'default'}):`, verPass));
  console.log(`ratio verify/raw: ${ratio.toFixed(3)} (target >= ${TARGET_RATIO}: ${ratio >= TARGET_RATIO ? 'met' : 'NOT met'})`);
  console.log(line('verify, one thread:', one) + `; ratio to raw ${(mbs(one) / mbs(rawPass)).toFixed(3)}`);
  console.log(line('hash floor, one thread:', floor) + `; ratio to raw ${(mbs(floor) / mbs(rawPass)).toFixed(3)}`);
  console.log(`maxRSS ${rss.join('; ')}`);
  console.log(`node:crypto one-shot SHA-256 per call (what the tree pays twice per event): ${perCallHash()}`);
  console.log(`load average after: ${load()}`);
} finally {
  cleanup();
  clearTimeout(deadline);
}
