/**
 * Signed checkpoints of an audit log (AUDIT-2): the tree head at a size, signed with an Ed25519
 * audit-checkpoint key and chained to the checkpoint before it.
 *
 * - The signed bytes are the RFC 8785 canonical JSON of the checkpoint object, nothing else.
 * - `previous` is base64url(SHA-256(canonical bytes of the previous checkpoint)), null for the
 *   log's first checkpoint; the chain makes dropping or reordering a checkpoint visible.
 * - `kid` is the RFC 7638 thumbprint of the signing key (see src/crypto/signing.ts), so a
 *   checkpoint names the very key that must verify it.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { ed25519Thumbprint, verifyEd25519, type Ed25519PublicJwk } from '../crypto/signing.ts';
import { canonicalBytes } from './canonical.ts';

const BASE64URL_SHAPES = { 32: /^[A-Za-z0-9_-]{43}$/, 64: /^[A-Za-z0-9_-]{86}$/ } as const;

/** base64url without padding of exactly `bytes` bytes (a hash or a signature), in its one canonical spelling. */
export function base64urlOf(bytes: 32 | 64): z.ZodString {
  const shape = BASE64URL_SHAPES[bytes];
  return z
    .string()
    .regex(shape, `base64url of ${bytes} bytes`)
    .refine((s) => Buffer.from(s, 'base64url').toString('base64url') === s, `canonical base64url of ${bytes} bytes`);
}

const hash32 = base64urlOf(32);

/** The checkpoint object as signed. Strict: any other member is refused. */
export const checkpointSchema = z.strictObject({
  log: z.string().min(1).max(256),
  size: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  root: hash32,
  previous: hash32.nullable(),
  kid: z.string().min(1).max(128),
  time: z.iso.datetime(),
});

/** A checkpoint: the tree head `root` of the first `size` events of log `log`. */
export type Checkpoint = z.infer<typeof checkpointSchema>;

/** A checkpoint with its Ed25519 signature (base64url of 64 bytes) over `checkpointBytes`. */
export const signedCheckpointSchema = z.strictObject({
  checkpoint: checkpointSchema,
  signature: base64urlOf(64),
});

export type SignedCheckpoint = z.infer<typeof signedCheckpointSchema>;

/** The bytes that are signed and chained: the checkpoint's canonical JSON. */
export function checkpointBytes(checkpoint: Checkpoint): Buffer {
  return canonicalBytes(checkpoint);
}

/**
 * The chain link to a checkpoint: what the next checkpoint carries as `previous`.
 * @example const next = { ...fields, previous: checkpointHash(last) };
 */
export function checkpointHash(checkpoint: Checkpoint): string {
  return createHash('sha256').update(checkpointBytes(checkpoint)).digest('base64url');
}

/**
 * Validates and signs a checkpoint. TypeError for a checkpoint that does not fit the schema.
 * @example signCheckpoint(cp, ed25519Signer(pkcs8))
 */
export function signCheckpoint(checkpoint: Checkpoint, signer: (data: Buffer) => Buffer): SignedCheckpoint {
  const parsed = checkpointSchema.safeParse(checkpoint);
  if (!parsed.success) throw new TypeError(`not a valid checkpoint: ${z.prettifyError(parsed.error)}`);
  return { checkpoint: parsed.data, signature: signer(checkpointBytes(parsed.data)).toString('base64url') };
}

/**
 * Whether `signed` is a well-formed checkpoint signed by `publicJwk`, and names that key as its
 * kid. False for a bad signature or shape; TypeError only for a malformed JWK.
 */
export function verifyCheckpointSignature(signed: SignedCheckpoint, publicJwk: Pick<Ed25519PublicJwk, 'kty' | 'crv' | 'x'>): boolean {
  const parsed = signedCheckpointSchema.safeParse(signed);
  if (!parsed.success) return false;
  const { checkpoint, signature } = parsed.data;
  const keyMatches = typeof publicJwk?.x === 'string' && checkpoint.kid === ed25519Thumbprint(publicJwk.x);
  const valid = verifyEd25519(publicJwk, checkpointBytes(checkpoint), Buffer.from(signature, 'base64url'));
  return keyMatches && valid;
}
