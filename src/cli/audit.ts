/**
 * `gatehouse audit verify <file> [--keys <jwks.json>] [--min-size N] [--size N --root <hex|base64>]
 * [--checkpoint <file>]`: the offline verifier on an export file, with what the auditor pins.
 * Exit codes (VERDICT_EXIT_CODES): 0 VERIFIED, 1 FAILED, 3 CONSISTENT-BUT-UNPINNED; 2 when the
 * file, the keys or a pin cannot be read. Needs no configuration, database or network.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ed25519Thumbprint } from '../crypto/signing.ts';
import { formatReport, signedCheckpointSchema, VERDICT_EXIT_CODES, verifyExport, type SignedCheckpoint, type TrustedKey, type VerifyPins } from '../audit/offline.ts';

export type Out = (line: string) => void;

export interface AuditVerifyOptions {
  /** A JWKS (`{"keys":[...]}`, as `/.well-known/jwks.json` serves it) or one JWK to pin. */
  trustedKeysFile?: string;
  /** `--min-size`: the log had at least this many events. */
  minSize?: string;
  /** `--size` and `--root`: a tree head seen before (both or neither). */
  size?: string;
  root?: string;
  /** `--checkpoint`: a signed checkpoint saved before (JSON). */
  checkpointFile?: string;
}

const X_RE = /^[A-Za-z0-9_-]{43}$/;

/** The Ed25519 keys in a JWKS or single JWK; other key types are ignored. */
export function trustedKeysOf(json: unknown): TrustedKey[] {
  const keys: unknown[] = Array.isArray((json as { keys?: unknown } | null)?.keys) ? (json as { keys: unknown[] }).keys : [json];
  const out: TrustedKey[] = [];
  for (const key of keys) {
    const { kty, crv, x } = (key ?? {}) as Record<string, unknown>;
    if (kty === 'OKP' && crv === 'Ed25519' && typeof x === 'string' && X_RE.test(x)) out.push({ kty, crv, x });
  }
  return out;
}

/** The kids of the Ed25519 keys in a JWKS or single JWK; other key types are ignored. */
export function trustedKidsOf(json: unknown): string[] {
  // The kid is recomputed from the key, never taken from the file: pinning is of keys.
  return trustedKeysOf(json).map((k) => ed25519Thumbprint(k.x));
}

/** A usage error: the message names the option. */
class PinError extends Error {}

function sizeOf(option: string, text: string): number {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(text) || !Number.isSafeInteger(Number(text))) throw new PinError(`${option} must be a whole number of events, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** A 32-byte root in hex (64 digits) or base64/base64url (43 or 44 characters). */
export function rootOf(text: string): Buffer {
  if (/^[0-9a-fA-F]{64}$/.test(text)) return Buffer.from(text, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) {
    const bytes = Buffer.from(text.replace(/=$/, '').replaceAll('+', '-').replaceAll('/', '_'), 'base64url');
    if (bytes.length === 32 && bytes.toString('base64url') === text.replace(/=$/, '').replaceAll('+', '-').replaceAll('/', '_')) return bytes;
  }
  throw new PinError('--root must be a 32-byte tree head in hex (64 digits) or base64');
}

/**
 * A saved checkpoint: `{checkpoint, signature}` as the API's checkpoint list gives each one, or
 * a checkpoint line of an export.
 */
export function savedCheckpointOf(json: unknown): SignedCheckpoint {
  const { type, ...rest } = (typeof json === 'object' && json !== null ? json : {}) as Record<string, unknown>;
  const parsed = type === undefined || type === 'checkpoint' ? signedCheckpointSchema.safeParse(rest) : null;
  if (parsed?.success !== true) throw new PinError('--checkpoint must hold one signed checkpoint: {"checkpoint":{...},"signature":"..."}');
  return parsed.data;
}

async function pinsOf(options: AuditVerifyOptions): Promise<VerifyPins> {
  const pins: VerifyPins = {};
  if (options.minSize !== undefined) pins.minSize = sizeOf('--min-size', options.minSize);
  if ((options.size === undefined) !== (options.root === undefined)) throw new PinError('--size and --root go together: the tree head is a root at a size');
  if (options.size !== undefined && options.root !== undefined) pins.treeHead = { size: sizeOf('--size', options.size), root: rootOf(options.root) };
  if (options.checkpointFile !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(await readFile(options.checkpointFile, 'utf8'));
    } catch (err) {
      throw new PinError(`cannot read the saved checkpoint from ${options.checkpointFile}: ${(err as Error).message}`);
    }
    pins.checkpoint = savedCheckpointOf(json);
  }
  return pins;
}

async function trustedKeysFrom(file: string): Promise<TrustedKey[]> {
  let keys: TrustedKey[];
  try {
    keys = trustedKeysOf(JSON.parse(await readFile(file, 'utf8')));
  } catch (err) {
    throw new PinError(`cannot read trusted keys from ${file}: ${(err as Error).message}`);
  }
  if (keys.length === 0) throw new PinError(`${file} holds no Ed25519 public key`);
  return keys;
}

/**
 * Verifies an export file and writes the report; returns the exit code.
 * @example process.exitCode = await runAuditVerify('audit.jsonl', { trustedKeysFile: 'jwks.json', minSize: '1200' }, console.log);
 */
export async function runAuditVerify(file: string, options: AuditVerifyOptions, out: Out, errOut: Out = out): Promise<number> {
  let trustedKeys: TrustedKey[] | undefined;
  let pins: VerifyPins;
  try {
    if (options.trustedKeysFile !== undefined) trustedKeys = await trustedKeysFrom(options.trustedKeysFile);
    pins = await pinsOf(options);
  } catch (err) {
    if (!(err instanceof PinError)) throw err;
    errOut(`gatehouse: ${err.message}`);
    return 2;
  }
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a file');
  } catch (err) {
    errOut(`gatehouse: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  let report;
  try {
    report = await verifyExport(createReadStream(file), { ...(trustedKeys === undefined ? {} : { trustedKeys }), pins });
  } catch (err) {
    errOut(`gatehouse: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  out(formatReport(report));
  return VERDICT_EXIT_CODES[report.verdict];
}
