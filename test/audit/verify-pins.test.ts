/**
 * What the auditor pins (AUDIT-3): keys, a minimum size, a tree head seen before, a checkpoint
 * saved before. Each attack here is one that an export alone cannot expose: a cut right after a
 * checkpoint with the unsigned end line rewritten to match, and a complete rewrite re-signed with
 * a fresh key. The verdict must say what was proven: VERIFIED, CONSISTENT-BUT-UNPINNED or FAILED.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SignedCheckpoint } from '../../src/audit/checkpoint.ts';
import { encodeExportLine, type ExportLine } from '../../src/audit/export-format.ts';
import { MerkleFrontier, leafHash } from '../../src/audit/merkle.ts';
import { formatReport, verifyExport, type VerifyOptions, type VerifyReport } from '../../src/audit/verify.ts';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { canonicalText } from '../../src/audit/canonical.ts';
import { rootOf as parseRoot, runAuditVerify, type AuditVerifyOptions } from '../../src/cli/audit.ts';
import { eventOf, exportLines, type ExportFixtureOptions } from './export-fixture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const key = generateSigningKey();
const intruder = generateSigningKey();
const trustedKeys = [key.publicJwk];

/** 95 events, a checkpoint every 10 and one after the last: fully covered, as the exporter leaves it. */
function linesOf(options: Partial<ExportFixtureOptions> = {}): string[] {
  return [...exportLines({ key, events: 95, every: 10, finalCheckpoint: true, ...options })];
}

const parse = (line: string): ExportLine => JSON.parse(line) as ExportLine;

async function verifyLines(lines: string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyExport(Readable.from([Buffer.from(lines.join(''), 'utf8')]), options);
}

function savedCheckpoint(lines: string[], size: number): SignedCheckpoint {
  for (const line of lines) {
    const p = parse(line);
    if (p.type === 'checkpoint' && p.checkpoint.size === size) return { checkpoint: p.checkpoint, signature: p.signature };
  }
  throw new Error(`no checkpoint of size ${size}`);
}

/** The root of the fixture's first `size` events, as an auditor would have seen it. */
function rootAt(size: number): Buffer {
  const tree = new MerkleFrontier();
  for (let seq = 0; seq < size; seq += 1) tree.appendText(canonicalText(eventOf(seq, 'tenant-acme')));
  return tree.root();
}

/**
 * The attack of a truncation: the export cut right after the checkpoint of size `size`, and its
 * unsigned end line rewritten to count what is left. Every line left is genuine.
 */
function cutAtCheckpoint(lines: string[], size: number): string[] {
  const at = lines.findIndex((l) => {
    const p = parse(l);
    return p.type === 'checkpoint' && p.checkpoint.size === size;
  });
  const kept = lines.slice(0, at + 1);
  const events = kept.filter((l) => parse(l).type === 'event').length;
  const checkpoints = kept.filter((l) => parse(l).type === 'checkpoint').length;
  return [...kept, encodeExportLine({ type: 'end', events, checkpoints })];
}

/** The attack of a rewrite: event 37 changed, every checkpoint recomputed and re-signed with a fresh key. */
function reSignedForgery(): string[] {
  return linesOf({ key: intruder, event: (seq, log) => (seq === 37 ? { ...eventOf(seq, log), action: 'role.revoke' } : eventOf(seq, log)) });
}

function expectFailed(report: VerifyReport, reason: string, index: number | null): void {
  expect(report.problem, formatReport(report)).toMatchObject({ reason, index });
  expect(report.verdict).toBe('FAILED');
  expect(formatReport(report).split('\n').at(-1)).toMatch(new RegExp(`^FAILED: ${reason} at `));
}

describe('an export cut at a checkpoint, its end line rewritten', () => {
  const cut = cutAtCheckpoint(linesOf(), 50);

  it('is consistent in itself: without pins the report says the end is not proven, never a plain pass', async () => {
    const unpinned = await verifyLines(cut);
    expect(unpinned).toMatchObject({ ok: true, verdict: 'CONSISTENT-BUT-UNPINNED', events: 50, coveredSize: 50, uncovered: null });
    expect(unpinned.unproven.join('\n')).toContain('that the log ends at index 49: the end line (50 events, 5 checkpoints) is not signed');
    const keysOnly = await verifyLines(cut, { trustedKeys });
    expect(keysOnly.verdict).toBe('VERIFIED');
    const text = formatReport(keysOnly);
    expect(text).toContain('NOT proven:  that the log ends at index 49');
    expect(text.split('\n').at(-1)).toBe('VERIFIED: the signatures check against the pinned keys (see NOT proven above)');
  });

  it('--min-size of the log seen before: FAILED BELOW_PINNED_SIZE at the first cut index', async () => {
    const report = await verifyLines(cut, { trustedKeys, pins: { minSize: 95 } });
    expectFailed(report, 'BELOW_PINNED_SIZE', 50);
    expect(report.problem?.message).toContain('sign 50 events');
  });

  it('a tree head seen before (--size, --root): FAILED BELOW_PINNED_SIZE', async () => {
    expectFailed(await verifyLines(cut, { trustedKeys, pins: { treeHead: { size: 90, root: rootAt(90) } } }), 'BELOW_PINNED_SIZE', 50);
  });

  it('a checkpoint saved before: FAILED BELOW_PINNED_SIZE', async () => {
    const saved = savedCheckpoint(linesOf(), 90);
    const report = await verifyLines(cut, { trustedKeys, pins: { checkpoint: saved } });
    expectFailed(report, 'BELOW_PINNED_SIZE', 50);
    expect(report.problem?.message).toContain('the saved checkpoint of size 90');
  });

  it('--min-size counts signed events only: an unsigned tail does not make up for a cut', async () => {
    // The attacker cut at 50 and appended unsigned events up to 95 (the end line matching).
    const lines = linesOf({ finalCheckpoint: false, every: 50 });
    const report = await verifyLines(lines, { trustedKeys, pins: { minSize: 95 } });
    expectFailed(report, 'BELOW_PINNED_SIZE', 50);
    expect(report.problem?.message).toContain('events 50..94 are not covered by a signed checkpoint');
  });
});

describe('a complete forgery re-signed with a fresh key', () => {
  it('without keys: CONSISTENT-BUT-UNPINNED, and the report names the unpinned key', async () => {
    const report = await verifyLines(reSignedForgery());
    expect(report).toMatchObject({ ok: true, verdict: 'CONSISTENT-BUT-UNPINNED', keys: [intruder.kid] });
    expect(report.unproven[0]).toContain('a rewrite re-signed with a new key cannot be excluded');
  });

  it('with the real keys: FAILED UNTRUSTED_KEY', async () => {
    expectFailed(await verifyLines(reSignedForgery(), { trustedKeys }), 'UNTRUSTED_KEY', null);
  });

  it('a checkpoint saved before that it does not extend (no keys given): FAILED PIN_ROOT_MISMATCH', async () => {
    const saved = savedCheckpoint(linesOf(), 40);
    const report = await verifyLines(reSignedForgery(), { pins: { checkpoint: saved } });
    expectFailed(report, 'PIN_ROOT_MISMATCH', 0);
    expect(report.problem?.message).toContain('events 0..39 do not hash to the root of the saved checkpoint of size 40');
  });

  it('a checkpoint saved before the change, that it does extend: its signature cannot be checked without the key: FAILED PIN_UNCHECKABLE', async () => {
    const report = await verifyLines(reSignedForgery(), { pins: { checkpoint: savedCheckpoint(linesOf(), 30) } });
    expectFailed(report, 'PIN_UNCHECKABLE', null);
    expect(report.problem?.line).toBe(0);
  });

  it('a tree head seen before: FAILED PIN_ROOT_MISMATCH', async () => {
    expectFailed(await verifyLines(reSignedForgery(), { pins: { treeHead: { size: 60, root: rootAt(60) } } }), 'PIN_ROOT_MISMATCH', 0);
  });
});

describe('the saved checkpoint itself', () => {
  it('signed by a key that is not trusted: FAILED PIN_BAD_CHECKPOINT', async () => {
    const forged = savedCheckpoint(reSignedForgery(), 40);
    expectFailed(await verifyLines(linesOf(), { trustedKeys, pins: { checkpoint: forged } }), 'PIN_BAD_CHECKPOINT', null);
  });

  it('with a signature that does not hold: FAILED PIN_BAD_CHECKPOINT, with keys and with the export\'s key', async () => {
    const saved = savedCheckpoint(linesOf(), 40);
    const altered: SignedCheckpoint = { ...saved, checkpoint: { ...saved.checkpoint, size: 41 } };
    expectFailed(await verifyLines(linesOf(), { trustedKeys, pins: { checkpoint: altered } }), 'PIN_BAD_CHECKPOINT', null);
    expectFailed(await verifyLines(linesOf(), { pins: { checkpoint: altered } }), 'PIN_BAD_CHECKPOINT', null);
  });

  it('of another log: FAILED PIN_BAD_CHECKPOINT', async () => {
    const other = savedCheckpoint(linesOf({ log: 'tenant-other' }), 40);
    expectFailed(await verifyLines(linesOf(), { trustedKeys, pins: { checkpoint: other } }), 'PIN_BAD_CHECKPOINT', null);
  });

  it('within the pruned events: FAILED PIN_UNCHECKABLE (the export cannot show it extends it)', async () => {
    const saved = savedCheckpoint(linesOf(), 20);
    expectFailed(await verifyLines(linesOf({ prunedUpTo: 30 }), { trustedKeys, pins: { checkpoint: saved } }), 'PIN_UNCHECKABLE', null);
  });
});

describe('an honest export with pins', () => {
  it('VERIFIED, naming each pin met', async () => {
    const lines = linesOf();
    const report = await verifyLines(lines, {
      trustedKeys,
      pins: { minSize: 95, treeHead: { size: 37, root: rootAt(37) }, checkpoint: savedCheckpoint(lines, 60) },
    });
    expect(report).toMatchObject({ ok: true, verdict: 'VERIFIED' });
    expect(report.proven).toEqual([
      `the saved checkpoint of size 60 carries a valid signature by trusted key ${key.kid}`,
      'the tree head pinned by --size 37 --root: the first 37 events of this export hash to its root',
      'the saved checkpoint of size 60: the first 60 events of this export hash to its root',
      '--min-size 95: the export\'s checkpoints sign 95 events',
    ]);
    expect(report.unproven).toEqual([
      'that the log ends at index 94: the pins show only that it has at least 95 events, and the end line (95 events, 10 checkpoints) is not signed, so events after index 94 could have been cut',
    ]);
  });

  it('pins at sizes 0 and at a pruned line\'s size are checked too', async () => {
    const empty = await verifyLines(linesOf(), { trustedKeys, pins: { treeHead: { size: 0, root: rootAt(0) } } });
    expect(empty.verdict).toBe('VERIFIED');
    const pruned = await verifyLines(linesOf({ prunedUpTo: 30 }), { trustedKeys, pins: { treeHead: { size: 30, root: rootAt(30) } } });
    expect(pruned.verdict).toBe('VERIFIED');
    expectFailed(await verifyLines(linesOf({ prunedUpTo: 30 }), { trustedKeys, pins: { treeHead: { size: 30, root: rootAt(31) } } }), 'PIN_ROOT_MISMATCH', null);
  });

  it('a pin inside a run of the fast scanner is checked at its exact size, with workers and any batch size', async () => {
    const text = linesOf().join('');
    const bytes = Buffer.from(text, 'utf8');
    for (const size of [1, 37, 63, 64, 95]) {
      const pins = { treeHead: { size, root: rootAt(size) } };
      const reference = await verifyExport(
        (async function* () {
          yield* text.split('\n').slice(0, -1);
        })(),
        { trustedKeys, pins },
      );
      expect(reference.verdict, formatReport(reference)).toBe('VERIFIED');
      for (const batchBytes of [300, 5000]) {
        expect(await verifyExport(Readable.from([bytes]), { trustedKeys, pins, threads: 0, batchBytes })).toEqual(reference);
        expect(await verifyExport(Readable.from([bytes]), { trustedKeys, pins, threads: 2, batchBytes })).toEqual(reference);
      }
    }
  });
});

describe('gatehouse audit verify with pins', () => {
  let work = '';
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'gh-audit-pins-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const NODE = join(ROOT, 'node_modules/.bin/node');

  function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(NODE, [join(ROOT, 'src/cli/main.ts'), 'audit', 'verify', ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('exit codes: 0 VERIFIED, 3 CONSISTENT-BUT-UNPINNED, 1 FAILED, 2 for a pin that cannot be read', () => {
    const lines = linesOf();
    const file = (name: string, text: string): string => {
      const path = join(work, name);
      writeFileSync(path, text);
      return path;
    };
    const good = file('good.jsonl', lines.join(''));
    const cut = file('cut.jsonl', cutAtCheckpoint(lines, 50).join(''));
    const forged = file('forged.jsonl', reSignedForgery().join(''));
    const jwks = file('jwks.json', JSON.stringify({ keys: [key.publicJwk] }));
    const saved = file('checkpoint.json', JSON.stringify(savedCheckpoint(lines, 90)));

    const verified = run(good, '--keys', jwks, '--min-size', '95', '--size', '60', '--root', rootAt(60).toString('hex'), '--checkpoint', saved);
    expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    expect(verified.stdout).toContain('proven:      --min-size 95');

    const unpinned = run(forged);
    expect(unpinned.status, unpinned.stderr).toBe(3);
    expect(unpinned.stdout.trimEnd().split('\n').at(-1)).toMatch(/^CONSISTENT-BUT-UNPINNED: /);
    const forgedPinned = run(forged, '--keys', jwks);
    expect(forgedPinned.status).toBe(1);
    expect(forgedPinned.stdout).toMatch(/FAILED: UNTRUSTED_KEY at line 2/);

    const truncated = run(cut, '--keys', jwks, '--min-size', '95');
    expect(truncated.status).toBe(1);
    expect(truncated.stdout).toMatch(/FAILED: BELOW_PINNED_SIZE at index 50: /);

    // Each usage error is checked in src/cli/audit.ts's own test; here, that one exits 2 with its message.
    const usage = run(good, '--size', '60');
    expect(usage.status).toBe(2);
    expect(usage.stderr).toContain('--size and --root go together');

    const help = run('--help');
    expect(help.stdout).toContain('3 CONSISTENT-BUT-UNPINNED');
  });

  it('in process: the root in hex or base64, a checkpoint line as the saved checkpoint, and each unreadable pin exits 2 with its reason', async () => {
    const lines = linesOf();
    const file = (name: string, text: string): string => {
      const path = join(work, name);
      writeFileSync(path, text);
      return path;
    };
    const good = file('good2.jsonl', lines.join(''));
    const cut = file('cut2.jsonl', cutAtCheckpoint(lines, 50).join(''));
    const jwks = file('jwks2.json', JSON.stringify({ keys: [key.publicJwk] }));
    const saved = file('checkpoint2.json', JSON.stringify(savedCheckpoint(lines, 90)));
    const savedLine = file('checkpoint-line.json', encodeExportLine({ type: 'checkpoint', ...savedCheckpoint(lines, 60) }));
    const verify = async (path: string, options: AuditVerifyOptions): Promise<{ code: number; out: string; err: string }> => {
      let out = '';
      let err = '';
      const code = await runAuditVerify(path, options, (l) => (out += l + '\n'), (l) => (err += l + '\n'));
      return { code, out, err };
    };
    const root60 = rootAt(60);
    for (const root of [root60.toString('hex'), root60.toString('hex').toUpperCase(), root60.toString('base64'), root60.toString('base64url')]) {
      const r = await verify(good, { trustedKeysFile: jwks, size: '60', root, checkpointFile: savedLine });
      expect(r.code, r.out + r.err).toBe(0);
    }
    const unpinned = await verify(cut, {});
    expect(unpinned.code).toBe(3);
    expect(unpinned.out).toContain('NOT proven:  that the keys are the server');
    const notExtended = await verify(cut, { trustedKeysFile: jwks, checkpointFile: saved });
    expect(notExtended.code).toBe(1);
    expect(notExtended.out).toMatch(/FAILED: BELOW_PINNED_SIZE at index 50: /);

    const cases: [AuditVerifyOptions, string][] = [
      [{ size: '60' }, '--size and --root go together'],
      [{ root: root60.toString('hex') }, '--size and --root go together'],
      [{ minSize: '-1' }, '--min-size must be a whole number'],
      [{ minSize: '1e3' }, '--min-size must be a whole number'],
      [{ size: '60', root: 'abc' }, '--root must be a 32-byte tree head'],
      [{ size: '60', root: root60.subarray(0, 31).toString('hex') }, '--root must be a 32-byte tree head'],
      [{ checkpointFile: join(work, 'missing.json') }, 'cannot read the saved checkpoint'],
      [{ checkpointFile: jwks }, '--checkpoint must hold one signed checkpoint'],
      [{ trustedKeysFile: saved }, 'holds no Ed25519 public key'],
    ];
    for (const [options, message] of cases) {
      const r = await verify(good, options);
      expect(r.code, JSON.stringify(options)).toBe(2);
      expect(r.err).toContain(message);
      expect(r.out).toBe('');
    }
  });
});

describe('a pinned tree head is the RFC 6962 tree head', () => {
  // ../shared/vectors/rfc6962 beside the repo: the happy-path consistency vectors give tree heads
  // (root1 at size1, root2 at size2) of the RFC's reference tree, in base64 as an auditor may paste them.
  const dir = fileURLToPath(new URL('../../../shared/vectors/rfc6962/consistency', import.meta.url));
  if (!existsSync(dir)) {
    if (process.env.CI) it('are present at ../shared/vectors/rfc6962 (required in CI)', () => expect.fail(`RFC 6962 vectors missing: ${dir}`));
    else it.skip(`skipped: RFC 6962 vectors not found at ${dir} (../shared beside the repo)`, () => {});
    return;
  }
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map((hex) => leafHash(Buffer.from(hex, 'hex')));
  const heads = readdirSync(dir)
    .filter((d) => existsSync(join(dir, d, 'happy-path.json')))
    .flatMap((d) => {
      const v = JSON.parse(readFileSync(join(dir, d, 'happy-path.json'), 'utf8')) as { size1: number; size2: number; root1: string; root2: string };
      return [
        { size: v.size1, root: v.root1 },
        { size: v.size2, root: v.root2 },
      ];
    });

  it('--root reads the vectors\' spelling, and the tree the verifier recomputes a pin with gives each head at its size', () => {
    expect(heads.length).toBeGreaterThanOrEqual(10);
    for (const { size, root } of heads) {
      const tree = new MerkleFrontier();
      for (const leaf of leaves.slice(0, size)) tree.append(leaf);
      expect(parseRoot(root).equals(Buffer.from(root, 'base64')), root).toBe(true);
      expect(tree.root().toString('base64'), `size ${size}`).toBe(root);
    }
  });
});
