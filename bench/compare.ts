/**
 * Before/after comparison of one benchmark (`npm run bench:compare -- <bench> [options]`):
 * runs `npm run bench:<bench>` in an older tree (A, the base) and in this one (B) in turn,
 * A B B A A B ..., and prints each figure's median on both sides and their ratio. On a shared
 * machine the load changes from minute to minute; runs taken in turn let it fall on both sides
 * alike, and reversing the order every other pair keeps a steady rise or fall of the load (seen
 * here: 20 to 34 over half an hour) from always landing on the second side. Each run prints the
 * load average before and after it, so a run that met a spike can be seen.
 *
 * Options:
 *   <bench>          gateway | auth (the npm script bench:<bench> of each tree is what runs)
 *   --base <ref>     the tree before the change; default: the parent of the first commit that
 *                    added src/server/module.ts (the start of issue 17's module refactor)
 *   --head <ref>     the tree after it; default: this working tree as it is (uncommitted edits
 *                    included). A ref is checked out in a temporary worktree, like the base.
 *   --pairs <n>      how many A B pairs, 1 to 5 (default 2)
 *   --base-patch <f> a patch applied (git apply) to the base's checkout before it runs, for a base
 *                    whose bench no longer runs as it was committed. Only the bench's own setup may
 *                    change, never what it measures: bench/compare-base-auth.patch makes the base's
 *                    bench:auth wait for the verification mail its tree sends from a queue (without
 *                    it, its sign-ins are all 403 EMAIL_NOT_VERIFIED).
 * Environment: passed through to each run (BENCH_SECONDS, BENCH_ROUNDS, DATABASE_URL, ...).
 * Each tree checked out here gets a temporary git worktree (detached) with node_modules symlinked to
 * this tree's; both are removed at the end. A run is stopped after 20 minutes.
 *
 * Figures (parsed from each bench's own report; `better` says which direction is faster):
 * - gateway: per Gatehouse target and JSON/stream, req/s, the Gatehouse/baseline-proxy ratio of
 *   req/s (the same run's baseline absorbs the load of the moment) and server CPU per request;
 * - auth: sign-ins/s and raw Argon2id verifications/s and their ratio, CPU per sign-in, and
 *   GET /v1/me against the same handler unguarded, and their ratio.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, realpathSync, rmSync, symlinkSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const RUN_TIMEOUT_MS = 20 * 60_000;
const BENCHES = ['gateway', 'auth'] as const;
type Bench = (typeof BENCHES)[number];

interface Figure {
  name: string;
  value: number;
  better: 'higher' | 'lower';
}

function git(args: string[], cwd = ROOT): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')} failed: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The parent of the commit that added src/server/module.ts: the tree before the module refactor began. */
export function defaultBase(): string {
  const added = git(['log', '--format=%H', '--diff-filter=A', '--', 'src/server/module.ts']).split('\n').filter(Boolean);
  const first = added[added.length - 1];
  if (first === undefined) throw new Error('no commit added src/server/module.ts; pass --base <ref>');
  return git(['rev-parse', `${first}^`]);
}

const number = (text: string): number => Number(text.replace(/,/g, ''));

/** The figures of one `bench:gateway` report. */
export function parseGateway(report: string): Figure[] {
  const figures: Figure[] = [];
  for (const line of report.split('\n')) {
    // | Gatehouse, embedded, JSON | 1,234 | 20 ms | 41 ms | 812 µs | 12345 | 0 |
    const row = /^\| (Gatehouse[^|]*?, (?:JSON|stream)) \| ([\d,]+) \| [^|]* \| [^|]* \| (\d+) µs \|/.exec(line);
    if (row) {
      figures.push({ name: `${row[1]}: req/s`, value: number(row[2] ?? ''), better: 'higher' });
      figures.push({ name: `${row[1]}: server CPU per request (µs)`, value: number(row[3] ?? ''), better: 'lower' });
    }
    const ratio = /^(Gatehouse[^:]*?, (?:JSON|stream)): ratio ([\d.]+).*?baseline\/Gatehouse ([\d.]+)/.exec(line);
    if (ratio) {
      figures.push({ name: `${ratio[1]}: req/s ratio to the baseline proxy`, value: Number(ratio[2]), better: 'higher' });
      // The steadier figure on a loaded machine: both servers' CPU per request, in the same run.
      figures.push({ name: `${ratio[1]}: server CPU per request, baseline/Gatehouse`, value: Number(ratio[3]), better: 'higher' });
    }
  }
  return figures;
}

/** The figures of one `bench:auth` report. */
export function parseAuth(report: string): Figure[] {
  const figures: Figure[] = [];
  const grab = (re: RegExp, name: string, better: Figure['better']): void => {
    const m = re.exec(report);
    if (m) figures.push({ name, value: Number(m[1]), better });
  };
  grab(/raw Argon2id verify[^:]*: ([\d.]+)\/s/, '(a) raw Argon2id verifications/s', 'higher');
  grab(/POST \/v1\/auth\/login[^:]*:\s+([\d.]+)\/s/, '(a) sign-ins/s', 'higher');
  grab(/\(a\)[\s\S]*?ratio ([\d.]+)/, '(a) sign-ins/s ratio to raw Argon2id', 'higher');
  grab(/sign-in ([\d.]+) ms; everything but Argon2/, '(a) CPU per sign-in (ms)', 'lower');
  grab(/everything but Argon2 (-?[\d.]+) ms/, '(a) CPU per sign-in besides Argon2 (ms)', 'lower');
  grab(/GET \/bench\/me-public[^:]*: ([\d.]+) req\/s/, '(b) unguarded handler req/s', 'higher');
  grab(/GET \/v1\/me[^:]*:\s+([\d.]+) req\/s/, '(b) GET /v1/me req/s', 'higher');
  grab(/\(b\)[\s\S]*?ratio ([\d.]+)/, '(b) /v1/me ratio to the unguarded handler', 'higher');
  return figures;
}

const PARSERS: Record<Bench, (report: string) => Figure[]> = { gateway: parseGateway, auth: parseAuth };

/** A detached worktree of `ref` in a temporary directory, node_modules linked to this tree's. */
function checkout(ref: string, patch?: string): { dir: string; remove: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-compare-'));
  git(['worktree', 'add', '--detach', dir, ref]);
  symlinkSync(realpathSync(join(ROOT, 'node_modules')), join(dir, 'node_modules'));
  if (patch !== undefined) git(['apply', resolve(ROOT, patch)], dir);
  return {
    dir,
    remove: () => {
      try {
        git(['worktree', 'remove', '--force', dir]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
        git(['worktree', 'prune']);
      }
    },
  };
}

const loads = (): string => loadavg().map((v) => v.toFixed(2)).join(' ');

/** One run of `npm run bench:<bench>` in `dir`: its report, or a rejection with its output. */
function runBench(dir: string, bench: Bench): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', ['run', '--silent', `bench:${bench}`], { cwd: dir, env: process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGTERM'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`bench:${bench} in ${dir} ended with ${signal ?? `exit code ${code}`}\n${out}\n${err.slice(-4000)}`));
    });
  });
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? Number.NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};

function parseArgs(argv: string[]): { bench: Bench; base: string; head: string | undefined; pairs: number; basePatch: string | undefined } {
  const [bench, ...rest] = argv;
  if (!BENCHES.includes(bench as Bench)) throw new Error(`usage: npm run bench:compare -- <${BENCHES.join('|')}> [--base <ref>] [--head <ref>] [--pairs 1-5] [--base-patch <file>]`);
  const option = (name: string): string | undefined => {
    const at = rest.indexOf(name);
    return at < 0 ? undefined : rest[at + 1];
  };
  const pairs = Number(option('--pairs') ?? 2);
  if (!Number.isInteger(pairs) || pairs < 1 || pairs > 5) throw new Error('--pairs must be an integer from 1 to 5');
  return { bench: bench as Bench, base: git(['rev-parse', option('--base') ?? defaultBase()]), head: option('--head'), pairs, basePatch: option('--base-patch') };
}

async function main(): Promise<void> {
  const { bench, base, head, pairs, basePatch } = parseArgs(process.argv.slice(2));
  const baseTree = checkout(base, basePatch);
  const headTree = head === undefined ? undefined : checkout(git(['rev-parse', head]));
  const headLabel = head === undefined ? `working tree at ${git(['rev-parse', '--short', 'HEAD'])}${git(['status', '--porcelain']) === '' ? '' : ' (with uncommitted edits)'}` : git(['rev-parse', '--short', head]);
  const sides = [
    { label: `A (base ${base.slice(0, 7)}${basePatch === undefined ? '' : ` + ${basePatch}`})`, dir: baseTree.dir, runs: [] as Figure[][] },
    { label: `B (head ${headLabel})`, dir: headTree?.dir ?? ROOT, runs: [] as Figure[][] },
  ];
  const log: string[] = [];
  try {
    for (let pair = 0; pair < pairs; pair++) {
      // A B, then B A: a load that rises or falls through the session weighs on both sides alike.
      for (const side of pair % 2 === 0 ? sides : [...sides].reverse()) {
        const before = loads();
        const report = await runBench(side.dir, bench);
        const figures = PARSERS[bench](report);
        if (figures.length === 0) throw new Error(`no figures found in the report of ${side.label}:\n${report}`);
        side.runs.push(figures);
        const line = `run ${pair + 1} ${side.label}: load ${before} -> ${loads()}`;
        log.push(line);
        process.stderr.write(`${line}\n${report}\n`);
      }
    }
  } finally {
    baseTree.remove();
    headTree?.remove();
  }

  const [a, b] = sides as [(typeof sides)[0], (typeof sides)[0]];
  const names = [...new Set(a.runs.flat().map((f) => f.name))];
  const out = [
    `bench:${bench}, ${pairs} pairs run in turn (A B B A ...); A = ${a.label}, B = ${b.label}`,
    ...log,
    '',
    '| figure | A median | B median | B vs A (> 1: B faster) | A runs | B runs |',
    '|---|---:|---:|---:|---|---|',
  ];
  for (const name of names) {
    const values = (side: typeof a): number[] => side.runs.map((run) => run.find((f) => f.name === name)?.value ?? Number.NaN);
    const better = a.runs.flat().find((f) => f.name === name)?.better ?? 'higher';
    const ma = median(values(a));
    const mb = median(values(b));
    const speed = better === 'higher' ? mb / ma : ma / mb;
    const fmt = (v: number): string => (Math.abs(v) >= 100 ? v.toFixed(0) : v.toFixed(2));
    out.push(`| ${name} | ${fmt(ma)} | ${fmt(mb)} | ${speed.toFixed(2)} | ${values(a).map(fmt).join(', ')} | ${values(b).map(fmt).join(', ')} |`);
  }
  process.stdout.write(`${out.join('\n')}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
