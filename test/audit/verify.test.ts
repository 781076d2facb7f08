/**
 * The offline verifier against real exports (a real Ed25519 key, checkpoints every 10 events)
 * and every way an export file can be tampered with: each attack must be named by its code and
 * the first index it spoils.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalText } from '../../src/audit/canonical.ts';
import { checkpointHash, type Checkpoint } from '../../src/audit/checkpoint.ts';
import { encodeExportLine, type ExportLine } from '../../src/audit/export-format.ts';
import { leafHashOfText } from '../../src/audit/merkle.ts';
import { formatReport, verifyExport, type VerifyOptions, type VerifyReport } from '../../src/audit/verify.ts';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { eventLine, eventOf, exportLines, type ExportFixtureOptions } from './export-fixture.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const key = generateSigningKey();
const intruder = generateSigningKey();
const EVERY = 10;
const EVENTS = 95;

/** Lines of an export, each with its "\n": 95 events, checkpoints at 10..90, 90..94 uncovered. */
function linesOf(options: Partial<ExportFixtureOptions> = {}): string[] {
  return [...exportLines({ key, events: EVENTS, every: EVERY, ...options })];
}

async function verifyLines(lines: string[], options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifyExport(Readable.from([Buffer.from(lines.join(''), 'utf8')]), options);
}

function parse(line: string): ExportLine {
  return JSON.parse(line) as ExportLine;
}

function eventAt(lines: string[], index: number): number {
  const at = lines.findIndex((l) => {
    const p = parse(l);
    return p.type === 'event' && p.index === index;
  });
  if (at < 0) throw new Error(`no event ${index}`);
  return at;
}

function checkpointAt(lines: string[], size: number): number {
  const at = lines.findIndex((l) => {
    const p = parse(l);
    return p.type === 'checkpoint' && p.checkpoint.size === size;
  });
  if (at < 0) throw new Error(`no checkpoint ${size}`);
  return at;
}

/** Rewrites one line through its parsed form. */
function edit(lines: string[], at: number, change: (line: ExportLine) => void): string[] {
  const copy = [...lines];
  const line = parse(copy[at] as string);
  change(line);
  copy[at] = encodeExportLine(line);
  return copy;
}

function withEnd(lines: string[]): string[] {
  const body = lines.filter((l) => parse(l).type !== 'end');
  const events = body.filter((l) => parse(l).type === 'event').length;
  const checkpoints = body.filter((l) => parse(l).type === 'checkpoint').length;
  return [...body, encodeExportLine({ type: 'end', events, checkpoints })];
}

function expectProblem(report: VerifyReport, reason: string, index: number | null): void {
  expect(report.problem, formatReport(report)).toMatchObject({ reason, index });
  expect(report.ok).toBe(false);
  const where = index === null ? `line ${report.problem?.line}` : `index ${index}`;
  expect(formatReport(report).split('\n').at(-1)).toMatch(new RegExp(`^FAILED: ${reason} at ${where}: `));
}

/** A consistent rewrite by someone without the key: event 37 altered, all heads recomputed. */
function forgedLines(options: Partial<ExportFixtureOptions> = {}): string[] {
  return linesOf({
    key: intruder,
    event: (seq, log) => (seq === 37 ? { ...eventOf(seq, log), action: 'role.revoke' } : eventOf(seq, log)),
    ...options,
  });
}

describe('an untouched export', () => {
  it('is built with the event lines encodeExportLine writes', () => {
    const event = eventOf(7, 'tenant-acme');
    expect(eventLine(7, canonicalText(event))).toBe(encodeExportLine({ type: 'event', index: 7, event }));
    const leaf = randomBytes(32).toString('base64url');
    expect(eventLine(7, canonicalText(event), leaf)).toBe(encodeExportLine({ type: 'event', index: 7, event, leaf }));
  });

  it('verifies, with counts, range, times, keys and the uncovered tail', async () => {
    const report = await verifyLines(linesOf());
    expect(report).toMatchObject({
      ok: true,
      log: 'tenant-acme',
      events: 95,
      firstIndex: 0,
      lastIndex: 94,
      checkpoints: 9,
      coveredSize: 90,
      uncovered: { from: 90, to: 94 },
      keys: [key.kid],
      keysPinned: false,
      pruned: null,
      firstTime: '2025-03-01T09:00:00.000Z',
      lastTime: '2025-03-01T09:01:34.000Z',
    });
    expect(report.problem).toBeUndefined();
    const text = formatReport(report);
    expect(text).toContain('WARNING: events 90..94 are not covered by a signed checkpoint');
    expect(text).toContain('NOT pinned');
    expect(report.verdict).toBe('CONSISTENT-BUT-UNPINNED');
    expect(text.split('\n').at(-1)).toMatch(/^CONSISTENT-BUT-UNPINNED: /);
  });

  it('verifies fully covered, with a size-0 checkpoint, and with its key pinned', async () => {
    const report = await verifyLines(linesOf({ finalCheckpoint: true, initialCheckpoint: true }), { trustedKids: [key.kid] });
    expect(report).toMatchObject({ ok: true, verdict: 'VERIFIED', checkpoints: 11, coveredSize: 95, uncovered: null, keysPinned: true });
    expect(formatReport(report)).not.toContain('WARNING');
    expect(formatReport(report).split('\n').at(-1)).toMatch(/^VERIFIED: /);
  });

  it('verifies the same in any chunking, as text chunks, and as lines', async () => {
    const text = linesOf().join('');
    const bytes = Buffer.from(text, 'utf8');
    const tiny = Array.from({ length: Math.ceil(bytes.length / 7) }, (_, i) => bytes.subarray(i * 7, i * 7 + 7));
    const reports = [
      await verifyExport(Readable.from(tiny)),
      await verifyExport(Readable.from(text.match(/[\s\S]{1,1000}/g) ?? [], { objectMode: true })),
      await verifyExport(
        (async function* () {
          yield* text.split('\n').slice(0, -1);
        })(),
      ),
    ];
    for (const report of reports) expect(report).toMatchObject({ ok: true, events: 95, checkpoints: 9 });
  });

  it('verifies events written in another JSON spelling of the same values', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 12);
    const { event } = parse(lines[at] as string) as { event: Record<string, unknown> };
    const reordered = Object.fromEntries(Object.entries(event).reverse());
    lines[at] = `{"type": "event", "index": 12, "event": ${JSON.stringify(reordered, null, 1).replaceAll('\n', '')}}\n`;
    expect(await verifyLines(lines)).toMatchObject({ ok: true, events: 95 });
  });

  it('verifies a pruned export and reports the chain anchor', async () => {
    const full = linesOf({ finalCheckpoint: true });
    const anchor = checkpointHash((parse(full[checkpointAt(full, 20)] as string) as { checkpoint: Checkpoint }).checkpoint);
    const report = await verifyLines(linesOf({ finalCheckpoint: true, prunedUpTo: 30 }));
    expect(report).toMatchObject({ ok: true, events: 65, firstIndex: 30, lastIndex: 94, pruned: { upTo: 30, anchor }, uncovered: null });
    expect(formatReport(report)).toContain('events 0..29 removed by retention');
  });
});

describe('tampering with the file', () => {
  it('a modified event: ROOT_MISMATCH from the start of its checkpoint range', async () => {
    const lines = linesOf();
    const tampered = edit(lines, eventAt(lines, 37), (l) => {
      if (l.type === 'event') l.event.action = 'role.revoke';
    });
    const report = await verifyLines(tampered);
    expectProblem(report, 'ROOT_MISMATCH', 30);
    expect(report.problem?.line).toBe(checkpointAt(lines, 40) + 1);
    expect(report.problem?.message).toContain('events 30..39');
  });

  it('a deleted event: SEQ_GAP at its index', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines(lines.filter((_, i) => i !== eventAt(lines, 37))), 'SEQ_GAP', 37);
  });

  it('a deleted event right before a checkpoint: SEQ_GAP at its index', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines(lines.filter((_, i) => i !== eventAt(lines, 39))), 'SEQ_GAP', 39);
  });

  it('the first event deleted: SEQ_GAP at 0', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines(lines.filter((_, i) => i !== eventAt(lines, 0))), 'SEQ_GAP', 0);
  });

  it('an inserted event under an index already used: SEQ_DUPLICATE at that index', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 52);
    const forged = encodeExportLine({ type: 'event', index: 52, event: { ...eventOf(52, 'tenant-acme'), action: 'role.grant', actor: 'user:intruder' } });
    expectProblem(await verifyLines([...lines.slice(0, at), forged, ...lines.slice(at)]), 'SEQ_DUPLICATE', 52);
  });

  it('an inserted event with the rest renumbered: CHECKPOINT_MISPLACED at the next checkpoint', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 52);
    const renumbered = lines.map((l, i) => {
      const p = parse(l);
      if (i < at || p.type !== 'event') return l;
      return encodeExportLine({ type: 'event', index: p.index + 1, event: { ...p.event, seq: p.index + 1 } });
    });
    const forged = encodeExportLine({ type: 'event', index: 52, event: { ...eventOf(52, 'tenant-acme'), actor: 'user:intruder' } });
    const tampered = withEnd([...renumbered.slice(0, at), forged, ...renumbered.slice(at)]);
    // The checkpoint of size 60 now comes after index 60: it covers fewer events than precede it.
    expectProblem(await verifyLines(tampered), 'CHECKPOINT_MISPLACED', 60);
  });

  it('an inserted event, renumbered and checkpoint lines moved to match: ROOT_MISMATCH', async () => {
    const lines = linesOf();
    const events = lines.filter((l) => parse(l).type === 'event').map((l) => (parse(l) as { event: Record<string, unknown> }).event);
    events.splice(52, 0, { ...eventOf(52, 'tenant-acme'), actor: 'user:intruder' });
    const checkpoints = new Map(lines.filter((l) => parse(l).type === 'checkpoint').map((l) => [(parse(l) as { checkpoint: Checkpoint }).checkpoint.size, l]));
    const tampered = [lines[0] as string, lines[1] as string];
    events.forEach((event, index) => {
      tampered.push(encodeExportLine({ type: 'event', index, event: { ...event, seq: index } }));
      const cp = checkpoints.get(index + 1);
      if (cp) tampered.push(cp);
    });
    expectProblem(await verifyLines(withEnd(tampered)), 'ROOT_MISMATCH', 50);
  });

  it('two events swapped: SEQ_OUT_OF_ORDER at the first', async () => {
    const lines = linesOf();
    const [a, b] = [eventAt(lines, 23), eventAt(lines, 24)];
    const swapped = [...lines];
    [swapped[a], swapped[b]] = [lines[b] as string, lines[a] as string];
    expectProblem(await verifyLines(swapped), 'SEQ_OUT_OF_ORDER', 23);
  });

  it('two events swapped across a checkpoint: SEQ_OUT_OF_ORDER at the first', async () => {
    const lines = linesOf();
    const [a, b] = [eventAt(lines, 39), eventAt(lines, 40)];
    const swapped = [...lines];
    [swapped[a], swapped[b]] = [lines[b] as string, lines[a] as string];
    expectProblem(await verifyLines(swapped), 'SEQ_OUT_OF_ORDER', 39);
  });

  it('two event bodies swapped under their line indexes: SEQ_MISMATCH at the first', async () => {
    const lines = linesOf();
    const [a, b] = [eventAt(lines, 23), eventAt(lines, 24)];
    const bodyOf = (at: number): Record<string, unknown> => (parse(lines[at] as string) as { event: Record<string, unknown> }).event;
    const swapped = [...lines];
    swapped[a] = encodeExportLine({ type: 'event', index: 23, event: bodyOf(b) });
    swapped[b] = encodeExportLine({ type: 'event', index: 24, event: bodyOf(a) });
    expectProblem(await verifyLines(swapped), 'SEQ_MISMATCH', 23);
  });

  it('a checkpoint moved one event later: CHECKPOINT_MISPLACED at its size', async () => {
    const lines = linesOf();
    const at = checkpointAt(lines, 40);
    const moved = [...lines];
    [moved[at], moved[at + 1]] = [lines[at + 1] as string, lines[at] as string];
    expectProblem(await verifyLines(moved), 'CHECKPOINT_MISPLACED', 40);
  });

  it('a checkpoint removed mid-file, end line fixed up: CHAIN_BROKEN after the last good one', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines(withEnd(lines.filter((_, i) => i !== checkpointAt(lines, 50)))), 'CHAIN_BROKEN', 40);
  });
});

describe('naming the event that was changed', () => {
  /** 10 events, each with an id, one checkpoint after the last: the brief's case. */
  function tenEvents(leaves: boolean, every = 10): string[] {
    return [...exportLines({ key, events: 10, every, leaves, event: (seq, log) => ({ ...eventOf(seq, log), id: `evt-${seq}` }) })];
  }

  /** Changes one field of event 7; `leaf` decides what its stated leaf hash becomes. */
  function changeEvent7(lines: string[], leaf: 'kept' | 'recomputed' | 'garbage'): string[] {
    return edit(lines, eventAt(lines, 7), (l) => {
      if (l.type !== 'event') return;
      l.event.actor = 'user:intruder';
      if (leaf === 'recomputed') l.leaf = leafHashOfText(canonicalText(l.event)).toString('base64url');
      if (leaf === 'garbage') l.leaf = randomBytes(32).toString('base64url');
    });
  }

  /** The same report on the lines path, the scanner on this thread and with workers, whatever the batch size. */
  async function everyPath(lines: string[]): Promise<VerifyReport> {
    const text = lines.join('');
    const reference = await verifyExport(textLines(text));
    for (const batchBytes of [200, 4096]) {
      expect(await verifyExport(Readable.from([Buffer.from(text)]), { threads: 0, batchBytes })).toEqual(reference);
      expect(await verifyExport(Readable.from([Buffer.from(text)]), { threads: 2, batchBytes })).toEqual(reference);
    }
    return reference;
  }

  it('an honest export that states its leaf hashes verifies on every path', async () => {
    expect(await everyPath(tenEvents(true))).toMatchObject({ ok: true, events: 10, checkpoints: 1 });
  });

  it('one field of event 7 changed, the leaf hashes stated: EVENT_MODIFIED at index 7, with its id and line', async () => {
    const lines = tenEvents(true);
    const report = await everyPath(changeEvent7(lines, 'kept'));
    expectProblem(report, 'EVENT_MODIFIED', 7);
    expect(report.problem).toMatchObject({ eventId: 'evt-7', line: eventAt(lines, 7) + 1 });
    expect(report.problem?.message).toContain('the event of index 7 (id evt-7)');
  });

  it('the same across checkpoints: the first changed event is named, not its checkpoint range', async () => {
    const lines = linesOf({ leaves: true });
    const tampered = edit(lines, eventAt(lines, 37), (l) => {
      if (l.type === 'event') l.event.action = 'role.revoke';
    });
    expectProblem(await everyPath(tampered), 'EVENT_MODIFIED', 37);
  });

  it('without stated leaf hashes: ROOT_MISMATCH over the range, saying why only the range can be named', async () => {
    const report = await everyPath(changeEvent7(tenEvents(false), 'kept'));
    expectProblem(report, 'ROOT_MISMATCH', 0);
    expect(report.problem?.message).toContain('events 0..9 do not hash to the root');
    expect(report.problem?.message).toContain('only the range can be named: the file states no leaf hashes for these events');
  });

  it('its stated leaf hash recomputed to match: ROOT_MISMATCH over the range, saying the hashes were rewritten too', async () => {
    const report = await everyPath(changeEvent7(tenEvents(true), 'recomputed'));
    expectProblem(report, 'ROOT_MISMATCH', 0);
    expect(report.problem?.message).toContain('each event hashes to the leaf hash stated on its line, so those were rewritten with the events');
  });

  it('its stated leaf hash replaced by another: ROOT_MISMATCH over the range (the stated hashes do not give the root either)', async () => {
    const report = await everyPath(changeEvent7(tenEvents(true), 'garbage'));
    expectProblem(report, 'ROOT_MISMATCH', 0);
    expect(report.problem?.message).toContain('do not give the signed root either');
  });

  it('only the stated leaf hash changed: LEAF_MISMATCH at index 7 (the events give the signed root)', async () => {
    const lines = tenEvents(true);
    const tampered = edit(lines, eventAt(lines, 7), (l) => {
      if (l.type === 'event') l.leaf = randomBytes(32).toString('base64url');
    });
    const report = await everyPath(tampered);
    expectProblem(report, 'LEAF_MISMATCH', 7);
    expect(report.problem?.message).toContain('the events hash to the root signed on line 13, so the stated hash was changed');
  });

  it('a changed event after the last checkpoint: LEAF_MISMATCH, saying which was changed cannot be told', async () => {
    // 10 events, a checkpoint every 6: events 6..9 are not covered.
    const report = await everyPath(changeEvent7(tenEvents(true, 6), 'kept'));
    expect(report.problem?.line).toBeGreaterThan(0);
    expectProblem(report, 'LEAF_MISMATCH', 7);
    expect(report.problem?.message).toContain('no checkpoint covers it');
  });
});

describe('truncation', () => {
  it('the end line dropped: TRUNCATED after the last event', async () => {
    expectProblem(await verifyLines(linesOf().slice(0, -1)), 'TRUNCATED', 95);
  });

  it('cut before the last checkpoint: TRUNCATED', async () => {
    const lines = linesOf({ finalCheckpoint: true });
    expectProblem(await verifyLines(lines.slice(0, checkpointAt(lines, 95))), 'TRUNCATED', 95);
  });

  it('the last events cut with everything after them: TRUNCATED at the first missing', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines(lines.slice(0, eventAt(lines, 92))), 'TRUNCATED', 92);
  });

  it('cut in the middle of a line: TRUNCATED at that event', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 61);
    const cut = [...lines.slice(0, at), (lines[at] as string).slice(0, 40)];
    expectProblem(await verifyLines(cut), 'TRUNCATED', 61);
  });

  it('the last checkpoint removed, end line kept: TRUNCATED from the last covered index', async () => {
    const lines = linesOf({ finalCheckpoint: true });
    expectProblem(await verifyLines(lines.filter((_, i) => i !== checkpointAt(lines, 95))), 'TRUNCATED', 90);
  });

  it('the uncovered tail removed, end line kept: TRUNCATED at the first missing', async () => {
    const lines = linesOf();
    const tail = new Set([eventAt(lines, 93), eventAt(lines, 94)]);
    expectProblem(await verifyLines(lines.filter((_, i) => !tail.has(i))), 'TRUNCATED', 93);
  });

  it('an empty file: TRUNCATED', async () => {
    expectProblem(await verifyLines([]), 'TRUNCATED', null);
  });
});

describe('a rewrite by someone without the signing key', () => {
  it('re-signed with their own key: verifies unpinned but names the other key; UNTRUSTED_KEY pinned', async () => {
    const forged = forgedLines();
    const unpinned = await verifyLines(forged);
    expect(unpinned.ok).toBe(true);
    expect(unpinned.keys).toEqual([intruder.kid]);
    expect(unpinned.keys).not.toContain(key.kid);
    const pinned = await verifyLines(forged, { trustedKids: [key.kid] });
    expectProblem(pinned, 'UNTRUSTED_KEY', null);
    expect(pinned.problem?.line).toBe(2);
  });

  it('their key declared under the real kid: BAD_KEY', async () => {
    const forged = edit(forgedLines(), 1, (l) => {
      if (l.type === 'key') l.kid = key.kid;
    });
    expectProblem(await verifyLines(forged), 'BAD_KEY', null);
  });

  /**
   * The forgery presented under the real key: the original key line, the real kid in every
   * checkpoint (so the chain is consistent), signatures made with the intruder's private key
   * unless `signatureOf` replaces them.
   */
  function underRealKey(signatureOf?: (size: number) => string): string[] {
    const forged = forgedLines({ key: { ...key, privatePkcs8: intruder.privatePkcs8 } });
    if (signatureOf === undefined) return forged;
    return forged.map((l) => {
      const p = parse(l);
      return p.type === 'checkpoint' ? encodeExportLine({ ...p, signature: signatureOf(p.checkpoint.size) }) : l;
    });
  }

  it('signed with another private key under the real kid: BAD_SIGNATURE at the first checkpoint', async () => {
    expectProblem(await verifyLines(underRealKey()), 'BAD_SIGNATURE', 0);
  });

  it('signatures kept from the original: BAD_SIGNATURE at the first changed range', async () => {
    const original = linesOf();
    const signatures = new Map(
      original.map(parse).flatMap((p) => (p.type === 'checkpoint' ? [[p.checkpoint.size, p.signature] as const] : [])),
    );
    const forged = underRealKey((size) => signatures.get(size) ?? '');
    expectProblem(await verifyLines(forged), 'BAD_SIGNATURE', 30);
  });

  it('garbage signatures: BAD_SIGNATURE at the first checkpoint', async () => {
    expectProblem(await verifyLines(underRealKey(() => randomBytes(64).toString('base64url'))), 'BAD_SIGNATURE', 0);
  });

  it('the key line removed: UNKNOWN_KEY at the first checkpoint', async () => {
    expectProblem(await verifyLines(linesOf().filter((_, i) => i !== 1)), 'UNKNOWN_KEY', 0);
  });
});

describe('malformed and misplaced lines', () => {
  it('another format in the header: BAD_HEADER', async () => {
    const lines = linesOf();
    lines[0] = lines[0]?.replace('gatehouse-audit-export/1', 'gatehouse-audit-export/2') ?? '';
    const report = await verifyLines(lines);
    expectProblem(report, 'BAD_HEADER', null);
    expect(report.problem?.message).toContain('gatehouse-audit-export/2');
  });

  it('the header of another log: LOG_MISMATCH at the first checkpoint', async () => {
    const lines = edit(linesOf(), 0, (l) => {
      if (l.type === 'header') l.log = 'tenant-other';
    });
    expectProblem(await verifyLines(lines), 'LOG_MISMATCH', 0);
  });

  it('a line after the end line: OUT_OF_PLACE', async () => {
    const lines = linesOf();
    expectProblem(await verifyLines([...lines, lines[2] as string]), 'OUT_OF_PLACE', null);
  });

  it('a line that is not JSON: MALFORMED_LINE with its line number', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 5);
    const report = await verifyLines([...lines.slice(0, at), 'not json\n', ...lines.slice(at)]);
    expectProblem(report, 'MALFORMED_LINE', null);
    expect(report.problem?.line).toBe(at + 1);
  });

  it('bytes that are not UTF-8: MALFORMED_LINE with its line number', async () => {
    const lines = linesOf();
    const at = eventAt(lines, 7);
    const bytes = Buffer.concat([Buffer.from(lines.slice(0, at).join('')), Buffer.from([0x7b, 0xff, 0xfe, 0x7d, 0x0a]), Buffer.from(lines.slice(at).join(''))]);
    const report = await verifyExport(Readable.from([bytes]));
    expectProblem(report, 'MALFORMED_LINE', null);
    expect(report.problem?.line).toBe(at + 1);
  });

  it('an event without seq: SEQ_MISMATCH', async () => {
    const lines = linesOf();
    expectProblem(
      await verifyLines(
        edit(lines, eventAt(lines, 3), (l) => {
          if (l.type === 'event') delete l.event.seq;
        }),
      ),
      'SEQ_MISMATCH',
      3,
    );
  });

  it('no checkpoint at all: NO_CHECKPOINT', async () => {
    expectProblem(await verifyLines(linesOf({ events: 5 })), 'NO_CHECKPOINT', null);
  });

  it('a pruned frontier that does not give the anchor root: ROOT_MISMATCH', async () => {
    const lines = linesOf({ prunedUpTo: 30 });
    const at = lines.findIndex((l) => parse(l).type === 'pruned');
    const tampered = edit(lines, at, (l) => {
      if (l.type === 'pruned') l.frontier.hashes[0] = randomBytes(32).toString('base64url');
    });
    expectProblem(await verifyLines(tampered), 'ROOT_MISMATCH', null);
  });

  it('a pruned line without its anchoring checkpoint: PRUNED_UNANCHORED', async () => {
    const lines = linesOf({ prunedUpTo: 30 });
    expectProblem(await verifyLines(lines.filter((_, i) => i !== checkpointAt(lines, 30))), 'PRUNED_UNANCHORED', 30);
  });
});

/** The lines of `text` as the lines path reads them (a final "\n" ends the last line). */
function textLines(text: string): AsyncIterable<string> {
  // An empty text has no lines (as a file read line by line); ''.split('\n') would give one.
  const lines = text === '' ? [] : text.split('\n');
  if (text.endsWith('\n')) lines.pop();
  return (async function* () {
    yield* lines;
  })();
}

describe('the fast scanner and worker threads give the same verdicts', () => {
  // The lines path (an iterable of lines) reads every line with the general parser and never
  // uses the scanner: it is the reference. Byte streams go through the scanner, on this thread
  // or in workers, in batches of any size.
  const exportArb = fc.record({
    events: fc.integer({ min: 0, max: 60 }),
    every: fc.integer({ min: 1, max: 12 }),
    initialCheckpoint: fc.boolean(),
    finalCheckpoint: fc.boolean(),
    leaves: fc.boolean(),
  });
  const lineEdit = fc.oneof(
    fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('duplicate' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('swap' as const), at: fc.nat(), with: fc.nat() }),
    fc.record({ kind: fc.constant('char' as const), at: fc.nat(), offset: fc.nat(), text: fc.constantFrom(' ', '0', '1', '9', '"', '\\', '\\u0041', '\\/', ',', '}', 'é', '\r', '') }),
    fc.record({ kind: fc.constant('respell' as const), at: fc.nat() }),
  );

  function applyEdit(lines: string[], e: { kind: string; at: number; with?: number; offset?: number; text?: string }): string[] {
    if (lines.length === 0) return lines;
    const copy = [...lines];
    const at = e.at % copy.length;
    const line = copy[at] as string;
    switch (e.kind) {
      case 'delete':
        copy.splice(at, 1);
        break;
      case 'duplicate':
        copy.splice(at, 0, line);
        break;
      case 'swap': {
        const other = (e.with as number) % copy.length;
        copy[at] = copy[other] as string;
        copy[other] = line;
        break;
      }
      case 'char': {
        const offset = (e.offset as number) % Math.max(1, line.length - 1);
        copy[at] = line.slice(0, offset) + (e.text as string) + line.slice(offset + 1);
        break;
      }
      default: {
        // The same values in another JSON spelling: members reversed, spaces.
        const reorder = (v: unknown): unknown =>
          typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reorder(x)])) : v;
        let value: unknown;
        try {
          value = JSON.parse(line);
        } catch {
          break; // an earlier edit left it not JSON: nothing to respell
        }
        copy[at] = `${JSON.stringify(reorder(value), null, 1).replaceAll('\n', '')}\n`;
      }
    }
    return copy;
  }

  async function threeWays(text: string, batchBytes: number, threads: number): Promise<VerifyReport[]> {
    const bytes = Buffer.from(text, 'utf8');
    const chunks = Array.from({ length: Math.ceil(bytes.length / 97) }, (_, i) => bytes.subarray(i * 97, i * 97 + 97));
    return [
      await verifyExport(textLines(text)),
      await verifyExport(Readable.from(chunks), { threads: 0, batchBytes }),
      ...(threads > 0 ? [await verifyExport(Readable.from(chunks), { threads, batchBytes })] : []),
    ];
  }

  it('an empty file (every line of an export deleted) is the same verdict on every path: TRUNCATED, the file is empty', async () => {
    // fast-check found this one: the reference split '' into one empty line and said BAD_HEADER.
    const reports = await threeWays('', 100, 2);
    expect(reports).toHaveLength(3);
    for (const report of reports) expect(report.problem).toMatchObject({ reason: 'TRUNCATED', message: 'the file is empty', line: 1 });
  });

  it('on random exports with random line edits (this thread, any batch size)', async () => {
    await fc.assert(
      fc.asyncProperty(exportArb, fc.array(lineEdit, { maxLength: 3 }), fc.integer({ min: 1, max: 4000 }), async (shape, edits, batchBytes) => {
        let lines = linesOf(shape);
        for (const e of edits) lines = applyEdit(lines, e);
        const [reference, scanned] = await threeWays(lines.join(''), batchBytes, 0);
        expect(scanned).toEqual(reference);
      }),
      { numRuns: 300 },
    );
  });

  it('on random exports with random line edits (two worker threads)', async () => {
    await fc.assert(
      fc.asyncProperty(exportArb, fc.array(lineEdit, { maxLength: 3 }), fc.integer({ min: 200, max: 6000 }), async (shape, edits, batchBytes) => {
        let lines = linesOf(shape);
        for (const e of edits) lines = applyEdit(lines, e);
        const [reference, scanned, threaded] = await threeWays(lines.join(''), batchBytes, 2);
        expect(scanned).toEqual(reference);
        expect(threaded).toEqual(reference);
      }),
      { numRuns: 12 },
    );
  });

  it.each([
    ['a modified event', (lines: string[]) => edit(lines, eventAt(lines, 37), (l) => void ((l as { event: Record<string, unknown> }).event.action = 'x')), 'ROOT_MISMATCH', 30],
    ['a deleted event', (lines: string[]) => lines.filter((_, i) => i !== eventAt(lines, 41)), 'SEQ_GAP', 41],
    ['two events swapped', (lines: string[]) => applyEdit(lines, { kind: 'swap', at: eventAt(lines, 52), with: eventAt(lines, 53) }), 'SEQ_OUT_OF_ORDER', 52],
    ['an event inserted', (lines: string[]) => applyEdit(lines, { kind: 'duplicate', at: eventAt(lines, 64) }), 'SEQ_DUPLICATE', 64],
  ] as const)('%s, with workers and batches that cut the file anywhere: the same code and index', async (_name, tamper, reason, index) => {
    const text = tamper(linesOf()).join('');
    for (const batchBytes of [300, 1000, 4096]) {
      const [reference, scanned, threaded] = await threeWays(text, batchBytes, 2);
      expectProblem(reference as VerifyReport, reason, index);
      expect(scanned).toEqual(reference);
      expect(threaded).toEqual(reference);
    }
  });

  it('an untouched export of 20,000 events verifies with workers (taking over once started) and by default, reporting as on one thread', async () => {
    const text = [...exportLines({ key, events: 20_000, every: 1000 })].join('');
    const bytes = Buffer.from(text, 'utf8');
    const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
    const auto = await verifyExport(Readable.from(chunks));
    const one = await verifyExport(Readable.from(chunks), { threads: 0 });
    const two = await verifyExport(Readable.from(chunks), { threads: 2, batchBytes: 100_000 });
    expect(one).toMatchObject({ ok: true, events: 20_000, checkpoints: 20, firstTime: '2025-03-01T09:00:00.000Z' });
    expect(auto).toEqual(one);
    expect(two).toEqual(one);
  });
});

describe('the verifier module graph', () => {
  const FORBIDDEN = [/\/src\/store\//, /^pg$/, /^@electric-sql\/pglite/, /^ioredis$/, /^node:net$/, /^node:http$/, /^node:https$/, /^node:tls$/, /^undici$/];
  const ALLOWED_EXTERNAL = new Set(['node:crypto', 'node:fs', 'node:fs/promises', 'node:os', 'node:readline', 'node:stream', 'node:worker_threads', 'zod', 'canonicalize']);

  /** Static and dynamic import specifiers of a source file, and modules it starts as workers. */
  function importsOf(source: string): string[] {
    const found: string[] = [];
    const patterns = [
      /^\s*(?:import|export)\s[^;]*?\sfrom\s+['"]([^'"]+)['"]/gm,
      /^\s*import\s+['"]([^'"]+)['"]/gm,
      /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
      /\bnew\s+URL\(\s*['"]([^'"]+)['"]\s*,\s*import\.meta\.url\s*\)/g,
    ];
    for (const re of patterns) for (const m of source.matchAll(re)) found.push(m[1] as string);
    return found;
  }

  it('reaches no database, cache or network module', () => {
    const seen = new Set<string>();
    const external = new Set<string>();
    const walk = (file: string): void => {
      if (seen.has(file)) return;
      seen.add(file);
      for (const spec of importsOf(readFileSync(file, 'utf8'))) {
        if (spec.startsWith('.')) walk(resolve(dirname(file), spec));
        else external.add(spec);
      }
    };
    walk(join(ROOT, 'src/audit/verify.ts'));
    // The CLI command's own module (its pins and keys files) adds nothing that reaches further.
    walk(join(ROOT, 'src/cli/audit.ts'));
    const files = [...seen].map((f) => f.slice(ROOT.length));
    expect(files).toContain('src/audit/merkle.ts');
    expect(files).toContain('src/audit/verify-pins.ts');
    expect(files).toContain('src/audit/verify-report.ts');
    expect(files).toContain('src/audit/verify-scan.ts');
    expect(files).toContain('src/audit/verify-worker.ts');
    expect(files).toContain('src/crypto/signing.ts');
    for (const name of [...files.map((f) => `/${f}`), ...external]) {
      for (const re of FORBIDDEN) expect(re.test(name), `${name} is imported by the verifier`).toBe(false);
    }
    for (const name of external) expect(ALLOWED_EXTERNAL.has(name), `${name} is imported by the verifier`).toBe(true);
    for (const file of files) expect(file).toMatch(/^src\/(audit\/|crypto\/signing\.ts$|cli\/audit\.ts$)/);
    expect(files.filter((f) => f.startsWith('src/audit/')).sort()).toEqual(
      [
        'canonical',
        'checkpoint',
        'export-format',
        'merkle',
        'merkle-hash',
        'merkle-proofs',
        'offline',
        'verify',
        'verify-feed',
        'verify-feed-workers',
        'verify-keys',
        'verify-leaves',
        'verify-lines',
        'verify-pin-check',
        'verify-pins',
        'verify-report',
        'verify-scan',
        'verify-scan-json',
        'verify-types',
        'verify-worker',
      ]
        .map((m) => `src/audit/${m}.ts`)
        .sort(),
    );
  });
});

describe('gatehouse audit verify', () => {
  let work = '';
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'gh-audit-cli-'));
  });
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const NODE = join(ROOT, 'node_modules/.bin/node');

  function run(...args: string[]): { status: number | null; stdout: string; stderr: string } {
    const r = spawnSync(NODE, [join(ROOT, 'src/cli/main.ts'), 'audit', 'verify', ...args], { cwd: work, encoding: 'utf8', timeout: 60_000 });
    return { status: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  it('exits 3 CONSISTENT-BUT-UNPINNED for an untouched export without keys, 0 VERIFIED with them, 1 with the code for a tampered one, 2 for no file', () => {
    const good = join(work, 'good.jsonl');
    const lines = linesOf({ finalCheckpoint: true });
    writeFileSync(good, lines.join(''));
    const bad = join(work, 'bad.jsonl');
    writeFileSync(
      bad,
      edit(lines, eventAt(lines, 37), (l) => {
        if (l.type === 'event') l.event.action = 'role.revoke';
      }).join(''),
    );
    const jwks = join(work, 'jwks.json');
    writeFileSync(jwks, JSON.stringify({ keys: [key.publicJwk] }));
    const otherJwks = join(work, 'other-jwks.json');
    writeFileSync(otherJwks, JSON.stringify({ keys: [intruder.publicJwk] }));

    const ok = run(good);
    expect(ok.status, ok.stderr).toBe(3);
    expect(ok.stdout.trimEnd().split('\n').at(-1)).toMatch(/^CONSISTENT-BUT-UNPINNED: /);
    expect(ok.stdout).toContain('events:      95 (index 0..94)');

    const pinned = run(good, '--keys', jwks);
    expect(pinned.status, pinned.stderr).toBe(0);
    expect(pinned.stdout).toContain('(pinned)');
    expect(pinned.stdout.trimEnd().split('\n').at(-1)).toMatch(/^VERIFIED: /);

    const failed = run(bad);
    expect(failed.status).toBe(1);
    expect(failed.stdout.trimEnd().split('\n').at(-1)).toMatch(/^FAILED: ROOT_MISMATCH at index 30: /);

    const untrusted = run(good, '--keys', otherJwks);
    expect(untrusted.status).toBe(1);
    expect(untrusted.stdout).toMatch(/FAILED: UNTRUSTED_KEY at line 2/);

    const missing = run(join(work, 'missing.jsonl'));
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read');
  });
});
