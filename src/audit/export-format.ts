/**
 * The audit export file, `gatehouse-audit-export/1` (AUDIT-3): what the server's exporter writes
 * and what the offline verifier (verify.ts) reads.
 *
 * JSON Lines: UTF-8, one JSON object per line, every line ending in "\n". Writers emit each line
 * as RFC 8785 canonical JSON (`encodeExportLine`); readers accept any JSON spelling of the same
 * values, since hashes and signatures are over canonical bytes, not over the file's text.
 *
 * Lines, in this order:
 *
 * 1. `{"type":"header","format":"gatehouse-audit-export/1","log":"<log id>","exportedAt":"<ISO>"}`,
 *    exactly once, first.
 * 2. `{"type":"key","kid":"<kid>","jwk":{<Ed25519 public JWK>}}` for every key that signed a
 *    checkpoint in the file, before the first checkpoint it signed (the exporter puts them all
 *    right after the header). `kid` is the RFC 7638 thumbprint of `jwk`, and `jwk.kid`, when
 *    present, is the same. Each kid once.
 * 3. At most one `{"type":"pruned","upTo":N,"frontier":{"size":N,"hashes":[<base64url>...]}}`
 *    when retention removed events 0..N-1 (AUDIT-4): the Merkle frontier at size N (the heads of
 *    the perfect subtrees of the first N leaves, largest first; see merkle.ts). It comes before
 *    any event or checkpoint and is followed (key lines aside) by the signed checkpoint of size
 *    N, whose root the frontier must reproduce; that checkpoint's `previous` points at a
 *    checkpoint that was pruned with the events and is reported as the chain's anchor.
 * 4. `{"type":"event","index":i,"event":{...}}` for i = 0, 1, 2, ... (or N, N+1, ... after a
 *    pruned line), in index order, no gaps. The event is opaque except that it carries
 *    `"seq": i`; a string `"time"` (and a string `"id"`) is reported. Its Merkle leaf is
 *    `leafHash(canonicalBytes(event))`. The exporter adds `"leaf"`, base64url of the leaf hash the
 *    log stored for that index (optional for readers): not signed, but the leaf hashes of a range
 *    that hash to a signed root are the original ones, so the verifier can name the very event
 *    that was changed rather than the range its checkpoint covers.
 * 5. `{"type":"checkpoint","checkpoint":{...},"signature":"<base64url>"}` (see checkpoint.ts)
 *    right after the event of index `size - 1`: the one of size 0 before any event, the one of
 *    size N right after a pruned line. Every checkpoint of the log in the exported range
 *    appears, in order, so each one's `previous` is the hash of the one before it in the file
 *    (null for the log's very first checkpoint).
 * 6. `{"type":"end","events":E,"checkpoints":C}`, exactly once, last: the number of event and
 *    checkpoint lines. A file without it was cut short. It is not signed: it catches accidental
 *    truncation; deliberate truncation can only be caught for events a signed checkpoint
 *    covers, so an exporter checkpoints the log before exporting to leave no uncovered tail, and
 *    a cut right after a checkpoint (end line rewritten) only against a size the auditor pinned
 *    (verify-pins.ts); the verifier reports the end as not proven without one.
 */
import { z } from 'zod';
import { canonicalText } from './canonical.ts';
import { base64urlOf, checkpointSchema } from './checkpoint.ts';

/** The format identifier in the header line. */
export const EXPORT_FORMAT = 'gatehouse-audit-export/1';

const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const logId = z.string().min(1).max(256);

/** An Ed25519 public key as the JWKS publishes it (RFC 8037). */
export const ed25519JwkSchema = z.strictObject({
  kty: z.literal('OKP'),
  crv: z.literal('Ed25519'),
  x: base64urlOf(32),
  kid: z.string().min(1).max(128).optional(),
  alg: z.literal('EdDSA').optional(),
  use: z.literal('sig').optional(),
});

export const headerLineSchema = z.strictObject({
  type: z.literal('header'),
  format: z.literal(EXPORT_FORMAT),
  log: logId,
  exportedAt: z.iso.datetime(),
});

export const keyLineSchema = z.strictObject({
  type: z.literal('key'),
  kid: z.string().min(1).max(128),
  jwk: ed25519JwkSchema,
});

export const prunedLineSchema = z.strictObject({
  type: z.literal('pruned'),
  upTo: size.min(1),
  frontier: z.strictObject({ size, hashes: z.array(base64urlOf(32)).max(53) }),
});

export const eventLineSchema = z.strictObject({
  type: z.literal('event'),
  index: size,
  event: z.record(z.string(), z.unknown()),
  leaf: base64urlOf(32).optional(),
});

export const checkpointLineSchema = z.strictObject({
  type: z.literal('checkpoint'),
  checkpoint: checkpointSchema,
  signature: base64urlOf(64),
});

export const endLineSchema = z.strictObject({
  type: z.literal('end'),
  events: size,
  checkpoints: size,
});

/** Any line of the file, told apart by `type`. */
export const exportLineSchema = z.discriminatedUnion('type', [
  headerLineSchema,
  keyLineSchema,
  prunedLineSchema,
  eventLineSchema,
  checkpointLineSchema,
  endLineSchema,
]);

export type HeaderLine = z.infer<typeof headerLineSchema>;
export type KeyLine = z.infer<typeof keyLineSchema>;
export type PrunedLine = z.infer<typeof prunedLineSchema>;
export type EventLine = z.infer<typeof eventLineSchema>;
export type CheckpointLine = z.infer<typeof checkpointLineSchema>;
export type EndLine = z.infer<typeof endLineSchema>;
export type ExportLine = z.infer<typeof exportLineSchema>;

/**
 * One line of the file: the canonical JSON of `line` and its "\n". TypeError for a value JSON
 * cannot represent. Shapes are checked by the type system here and by the verifier on reading.
 * @example out.write(encodeExportLine({ type: 'event', index: 0, event: { seq: 0, action: 'login' } }));
 */
export function encodeExportLine(line: ExportLine): string {
  return canonicalText(line) + '\n';
}
