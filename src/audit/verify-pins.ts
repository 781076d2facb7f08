/**
 * What an auditor pins when verifying an export offline (AUDIT-3), and the verdict it allows.
 *
 * An export proves only what its signatures cover, and only to whoever trusts the keys. Two
 * things it cannot show by itself:
 * - that its keys are the server's: a rewrite re-signed with a fresh key is as consistent as the
 *   original. Pinning the keys (`--keys`, the server's /.well-known/jwks.json) excludes it.
 * - that nothing was cut after its last checkpoint: the end line is not signed, so an export cut
 *   right after a checkpoint, with its end line rewritten to match, is as consistent as the
 *   whole one. Pinning a size excludes it, as a transparency-log witness does: a minimum size
 *   (`--min-size`), a tree head seen before (`--size` with `--root`), or a signed checkpoint saved
 *   before (`--checkpoint`). The export must reach that size and, for a tree head, give the same
 *   root at that size (recomputed from its events: the history before it was not rewritten).
 *
 * Verdicts: VERIFIED (keys pinned, every pin met), CONSISTENT-BUT-UNPINNED (nothing failed, but
 * no keys were pinned), FAILED (a problem: the report's `problem`).
 */
import { ed25519Thumbprint } from '../crypto/signing.ts';
import { verifyCheckpointSignature, type SignedCheckpoint } from './checkpoint.ts';

/** The verdict of a verification (see the module comment). */
export type Verdict = 'VERIFIED' | 'CONSISTENT-BUT-UNPINNED' | 'FAILED';

/** An Ed25519 public key to trust, as in a JWKS. */
export interface TrustedKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

/** What the auditor expects of the log, from an earlier look at it. */
export interface VerifyPins {
  /** The log had at least this many events: the export's checkpoints must sign at least as many. */
  minSize?: number;
  /** A tree head seen before: the export's first `size` events must hash to `root` (32 bytes). */
  treeHead?: { size: number; root: Uint8Array };
  /** A signed checkpoint saved before: the export must extend it (same root at its size). */
  checkpoint?: SignedCheckpoint;
}

/** A tree head the export must reproduce at `size`. */
export interface RootPin {
  size: number;
  /** base64url of the 32-byte root. */
  root: string;
  /** How the report names the pin. */
  source: string;
}

/** The tree heads to check, by size, from the pins. */
export function rootPinsOf(pins: VerifyPins): RootPin[] {
  const out: RootPin[] = [];
  if (pins.treeHead !== undefined) {
    const { size, root } = pins.treeHead;
    out.push({ size, root: Buffer.from(root).toString('base64url'), source: `the tree head pinned by --size ${size} --root` });
  }
  if (pins.checkpoint !== undefined) {
    const cp = pins.checkpoint.checkpoint;
    out.push({ size: cp.size, root: cp.root, source: `the saved checkpoint of size ${cp.size}` });
  }
  return out.sort((a, b) => a.size - b.size);
}

/** The kids of trusted keys (recomputed from the keys, never taken from a file). */
export function kidsOf(keys: readonly TrustedKey[]): string[] {
  return keys.map((k) => ed25519Thumbprint(k.x));
}

/**
 * The saved checkpoint's signature, checked with `key`, the trusted key of its kid: null when it
 * holds, else why not. Undefined when no trusted key of that kid was given as a key but the kid
 * may be trusted: the export's own key line of that kid decides then (trusted, when kids are).
 */
export function checkSavedCheckpoint(saved: SignedCheckpoint, key: TrustedKey | undefined, trustedKids: ReadonlySet<string> | null): string | null | undefined {
  const kid = saved.checkpoint.kid;
  if (key === undefined) {
    return trustedKids !== null && !trustedKids.has(kid) ? `the saved checkpoint is signed by key ${kid}, which is not among the trusted keys` : undefined;
  }
  return verifyCheckpointSignature(saved, key) ? null : `the saved checkpoint does not carry a valid signature by key ${kid}`;
}

/** The verdict a finished verification allows. */
export function verdictOf(failed: boolean, keysPinned: boolean): Verdict {
  if (failed) return 'FAILED';
  return keysPinned ? 'VERIFIED' : 'CONSISTENT-BUT-UNPINNED';
}

/** `gatehouse audit verify`'s exit code for a verdict; 2 is kept for a file that cannot be read. */
export const VERDICT_EXIT_CODES: Readonly<Record<Verdict, number>> = {
  VERIFIED: 0,
  FAILED: 1,
  'CONSISTENT-BUT-UNPINNED': 3,
};
