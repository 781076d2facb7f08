/**
 * The hashing of the audit log's RFC 6962 Merkle tree (merkle.ts): leaf and node hashes, the
 * empty tree's head, and the size arithmetic the tree and its proofs share.
 */
import { hash } from 'node:crypto';

/** SHA-256 output length, the length of every hash in the tree. */
export const HASH_BYTES = 32;

export const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

// One reusable buffer for node hashing: hashing is synchronous, so no two calls overlap, and
// filling it beats allocating a 65-byte concatenation per node on the verifier's hot path.
const nodeInput = Buffer.alloc(1 + 2 * HASH_BYTES);

export function sha256(data: Uint8Array | string): Buffer {
  return hash('sha256', data, 'buffer');
}

/** SHA-256(0x00 || data): the hash of one leaf (RFC 6962 section 2.1). */
export function leafHash(data: Uint8Array): Buffer {
  const input = Buffer.allocUnsafe(data.length + 1);
  input[0] = LEAF_PREFIX;
  input.set(data, 1);
  return sha256(input);
}

/**
 * The leaf hash of UTF-8 text without copying it into a buffer first: U+0000 encodes to the
 * single byte 0x00, which is exactly the leaf prefix.
 */
export function leafHashOfText(text: string): Buffer {
  return sha256('\u0000' + text);
}

/** SHA-256(0x01 || left || right): the hash of an interior node. */
export function nodeHash(left: Uint8Array, right: Uint8Array): Buffer {
  if (left.length !== HASH_BYTES || right.length !== HASH_BYTES) {
    return sha256(Buffer.concat([Buffer.of(NODE_PREFIX), left, right]));
  }
  nodeInput[0] = NODE_PREFIX;
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  return sha256(nodeInput);
}

/** SHA-256 of the empty string: the tree head of the empty tree. */
export function emptyRoot(): Buffer {
  return sha256(Buffer.alloc(0));
}

/** Whether n is a non-negative safe integer. */
export function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly less than n (n >= 2). */
export function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

// The frontier keeps its hashes as 32-character latin1 strings: node:crypto returns a hash as
// a string several times faster than as a new Buffer, and a verifier spends most of its time
// in exactly these hashes (one leaf and, amortised, one node per event).
export function nodeHashBinary(left: string, right: string): string {
  nodeInput[0] = NODE_PREFIX;
  nodeInput.write(left, 1, HASH_BYTES, 'latin1');
  nodeInput.write(right, 1 + HASH_BYTES, HASH_BYTES, 'latin1');
  return hash('sha256', nodeInput, 'binary');
}

export function binaryOf(h: Uint8Array): string {
  return Buffer.from(h.buffer, h.byteOffset, h.length).toString('latin1');
}
