/**
 * Builds audit exports the way the server's exporter must: real events, a real Ed25519 key,
 * checkpoints every `every` events chained to each other, optionally pruned. A generator of
 * lines, so the benchmark can stream a large file and tests can hold a small one.
 */
import { ed25519Signer, type SigningKeyPair } from '../../src/crypto/signing.ts';
import { canonicalText } from '../../src/audit/canonical.ts';
import { checkpointHash, signCheckpoint, type Checkpoint, type SignedCheckpoint } from '../../src/audit/checkpoint.ts';
import { encodeExportLine } from '../../src/audit/export-format.ts';
import { MerkleFrontier, leafHashOfText } from '../../src/audit/merkle.ts';

export interface ExportFixtureOptions {
  key: SigningKeyPair;
  events: number;
  /** A checkpoint after every this many events. */
  every: number;
  log?: string;
  /** Also a checkpoint of size 0 before the first event. */
  initialCheckpoint?: boolean;
  /** Also a checkpoint after the last event when `events` is not a multiple of `every`. */
  finalCheckpoint?: boolean;
  /** Leave out events below this size (a checkpoint size), as retention would. */
  prunedUpTo?: number;
  /** The event of a seq; defaults to `eventOf`. */
  event?: (seq: number, log: string) => Record<string, unknown>;
  /** Milliseconds since the epoch of event 0; each next event one second later. */
  startMs?: number;
  /** State each event's leaf hash on its line, as the server's exporter does. */
  leaves?: boolean;
}

const START_MS = Date.parse('2025-03-01T09:00:00.000Z');

/** An event shaped like the server's: who did what to what, from where, when. */
export function eventOf(seq: number, log: string, startMs = START_MS): Record<string, unknown> {
  const actions = ['session.create', 'session.revoke', 'mfa.verify', 'role.grant', 'key.rotate'];
  return {
    seq,
    log,
    time: new Date(startMs + seq * 1000).toISOString(),
    actor: `user:${(seq % 97).toString(16).padStart(8, '0')}-4b1d-4e5a-9c3f-0a1b2c3d4e5f`,
    action: actions[seq % actions.length],
    target: `session:${(seq * 7919).toString(36)}`,
    ip: `203.0.113.${seq % 256}`,
    ua: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36',
    requestId: `req-${seq.toString(16).padStart(12, '0')}`,
  };
}

/**
 * The event line `encodeExportLine` writes, assembled from the event's canonical text so a large
 * export is not canonicalized twice (the members of the line sort as event, index, type).
 */
export function eventLine(index: number, canonicalEvent: string, leaf?: string): string {
  const stated = leaf === undefined ? '' : `,"leaf":"${leaf}"`;
  return `{"event":${canonicalEvent},"index":${index}${stated},"type":"event"}\n`;
}

/** The lines of an export (each with its "\n"), header to end line. */
export function* exportLines(options: ExportFixtureOptions): Generator<string> {
  const log = options.log ?? 'tenant-acme';
  const startMs = options.startMs ?? START_MS;
  const makeEvent = options.event ?? ((seq: number, l: string) => eventOf(seq, l, startMs));
  const sign = ed25519Signer(options.key.privatePkcs8);
  const prunedUpTo = options.prunedUpTo ?? 0;
  const tree = new MerkleFrontier();
  let previous: string | null = null;
  let timeMs = startMs;
  let eventLines = 0;
  let checkpointLines = 0;

  const checkpoint = (): SignedCheckpoint => {
    const cp: Checkpoint = { log, size: tree.size, root: tree.root().toString('base64url'), previous, kid: options.key.kid, time: new Date(timeMs).toISOString() };
    previous = checkpointHash(cp);
    return signCheckpoint(cp, sign);
  };
  const checkpointLine = (signed: SignedCheckpoint): string => {
    checkpointLines += 1;
    return encodeExportLine({ type: 'checkpoint', ...signed });
  };

  yield encodeExportLine({ type: 'header', format: 'gatehouse-audit-export/1', log, exportedAt: new Date(startMs + options.events * 1000 + 60_000).toISOString() });
  yield encodeExportLine({ type: 'key', kid: options.key.kid, jwk: options.key.publicJwk });

  if (options.initialCheckpoint) {
    const signed = checkpoint();
    if (prunedUpTo === 0) yield checkpointLine(signed);
  }
  for (let seq = 0; seq < options.events; seq += 1) {
    const event = makeEvent(seq, log);
    const text = canonicalText(event);
    tree.appendText(text);
    timeMs = startMs + seq * 1000;
    const atCheckpoint = tree.size % options.every === 0 || (options.finalCheckpoint === true && seq === options.events - 1);
    if (seq >= prunedUpTo) {
      eventLines += 1;
      yield eventLine(seq, text, options.leaves === true ? leafHashOfText(text).toString('base64url') : undefined);
    }
    if (atCheckpoint) {
      const signed = checkpoint();
      if (tree.size === prunedUpTo) {
        yield encodeExportLine({ type: 'pruned', upTo: prunedUpTo, frontier: tree.toJSON() });
        yield checkpointLine(signed);
      } else if (tree.size > prunedUpTo) {
        yield checkpointLine(signed);
      }
    }
  }
  yield encodeExportLine({ type: 'end', events: eventLines, checkpoints: checkpointLines });
}

/** The whole export as one string. */
export function exportText(options: ExportFixtureOptions): string {
  return [...exportLines(options)].join('');
}
