/**
 * The RFC 6962 Merkle tree of the audit log (RFC 9162 section 2.1 gives the same tree with
 * clearer algorithms): leaf and node hashing, the tree head of a list of leaves, a streaming
 * frontier for appends, and inclusion and consistency proofs with their verification.
 *
 * Hand-written on node:crypto: no maintained package covers RFC 6962 proofs in this runtime,
 * and the whole of it is a few hundred lines that must be read by anyone who audits the log.
 *
 * Sizes and indexes are JavaScript numbers (safe integers, up to 2^53 - 1). Bit operators work
 * on 32 bits, so halving and parity use arithmetic instead.
 *
 * Verification never throws: any malformed input (wrong-length hash, index out of range,
 * non-integer size, a proof that is not an array of buffers) is a proof that does not verify.
 *
 * The parts: hashing in merkle-hash.ts, the frontier and aligned subtrees (the verifier's hot
 * path) here, proofs and their verification in merkle-proofs.ts; this module re-exports them.
 */
import { hash } from 'node:crypto';
import { binaryOf, emptyRoot, HASH_BYTES, isSize, LEAF_PREFIX, nodeHashBinary } from './merkle-hash.ts';
import type { SubtreeSource } from './merkle-proofs.ts';

export { emptyRoot, HASH_BYTES, leafHash, leafHashOfText, nodeHash } from './merkle-hash.ts';
export { consistencyProof, inclusionProof, verifyConsistency, verifyInclusion, type SubtreeSource } from './merkle-proofs.ts';

/** The number of set bits of a safe integer. */
function popcount(n: number): number {
  let count = 0;
  for (let v = n; v > 0; v = Math.floor(v / 2)) count += v % 2;
  return count;
}

/**
 * An append-only tree that keeps only its frontier: the heads of the perfect subtrees that make
 * up the tree, largest first, one per set bit of the size. O(log n) memory; an append costs one
 * leaf's worth of node hashes amortised.
 * @example const f = new MerkleFrontier(); f.append(leafHash(data)); f.root();
 */
export class MerkleFrontier {
  #hashes: string[] = [];
  #size = 0;

  /** A frontier resumed from saved hashes (as from `toJSON`) of a tree of `size` leaves. */
  static from(hashes: readonly Uint8Array[], size: number): MerkleFrontier {
    if (!isSize(size)) throw new TypeError('size must be a non-negative safe integer');
    if (!Array.isArray(hashes) || hashes.length !== popcount(size)) {
      throw new TypeError(`a frontier of size ${size} has ${popcount(size)} hashes`);
    }
    const frontier = new MerkleFrontier();
    for (const h of hashes) {
      if (!(h instanceof Uint8Array) || h.length !== HASH_BYTES) throw new TypeError(`frontier hashes are ${HASH_BYTES} bytes`);
      frontier.#hashes.push(binaryOf(h));
    }
    frontier.#size = size;
    return frontier;
  }

  /** The number of leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** Appends the hash of the next leaf (see `leafHash`). */
  append(leaf: Uint8Array): void {
    if (!(leaf instanceof Uint8Array) || leaf.length !== HASH_BYTES) throw new TypeError(`a leaf hash is ${HASH_BYTES} bytes`);
    this.#push(binaryOf(leaf));
  }

  /** Appends the leaf whose data is the UTF-8 encoding of `text`: `append(leafHash(utf8 of text))`. */
  appendText(text: string): void {
    // U+0000 encodes to the single byte 0x00, which is exactly the leaf prefix.
    this.#push(hash('sha256', '\u0000' + text, 'binary'));
  }

  /**
   * Appends a perfect subtree of 2^height leaves given by its head: the same tree as appending
   * its leaves one by one. The tree's size must be a multiple of 2^height (the subtree is
   * aligned, as `AlignedSubtrees` gives them).
   */
  appendSubtree(head: Uint8Array, height: number): void {
    if (!(head instanceof Uint8Array) || head.length !== HASH_BYTES) throw new TypeError(`a subtree head is ${HASH_BYTES} bytes`);
    if (!Number.isInteger(height) || height < 0 || height > 52) throw new RangeError('a subtree height is an integer from 0 to 52');
    const leaves = 2 ** height;
    if (this.#size % leaves !== 0) throw new RangeError(`a subtree of ${leaves} leaves cannot follow ${this.#size} leaves`);
    if (this.#size + leaves > Number.MAX_SAFE_INTEGER) throw new RangeError('the tree is full');
    let merged = binaryOf(head);
    // As in #push, one level up: the subtree carries into the frontier's trailing ones.
    for (let n = this.#size / leaves; n % 2 === 1; n = (n - 1) / 2) {
      const left = this.#hashes.pop();
      if (left === undefined) throw new Error('frontier out of step with its size');
      merged = nodeHashBinary(left, merged);
    }
    this.#hashes.push(merged);
    this.#size += leaves;
  }

  #push(leaf: string): void {
    if (this.#size >= Number.MAX_SAFE_INTEGER) throw new RangeError('the tree is full');
    let head = leaf;
    // Each trailing one bit of the old size is a perfect subtree of the new leaf's height:
    // merge with it, as a binary counter carries.
    for (let n = this.#size; n % 2 === 1; n = (n - 1) / 2) {
      const left = this.#hashes.pop();
      if (left === undefined) throw new Error('frontier out of step with its size');
      head = nodeHashBinary(left, head);
    }
    this.#hashes.push(head);
    this.#size += 1;
  }

  /** The tree head (MTH) of the leaves appended so far. */
  root(): Buffer {
    const last = this.#hashes.at(-1);
    if (last === undefined) return emptyRoot();
    let root = last;
    for (let i = this.#hashes.length - 2; i >= 0; i -= 1) {
      root = nodeHashBinary(this.#hashes[i] as string, root);
    }
    return Buffer.from(root, 'latin1');
  }

  /** The saved form: the size and the frontier hashes in base64url, largest subtree first. */
  toJSON(): { size: number; hashes: string[] } {
    return { size: this.#size, hashes: this.#hashes.map((h) => Buffer.from(h, 'latin1').toString('base64url')) };
  }
}

/**
 * The heads of the maximal aligned perfect subtrees of a run of consecutive leaves: a subtree of
 * 2^h leaves starting at a multiple of 2^h, as large as the run allows. Any run splits into at
 * most about 2·log2(length) of them, and a `MerkleFrontier` whose size is the run's first index
 * takes them in order with `appendSubtree`, giving the tree it would have after appending each
 * leaf. This lets the leaves of disjoint runs be hashed apart (the offline verifier's worker
 * threads) and the tree be put together from a few heads per run.
 * @example const t = new AlignedSubtrees(); t.reset(1000); t.appendLeafInput(prefixed); const { heads, heights } = t.finish();
 */
export class AlignedSubtrees {
  #heads: string[] = [];
  #heights: number[] = [];
  #starts: number[] = [];
  #next = 0;

  /** Starts a run whose first leaf has index `first`. */
  reset(first: number): void {
    if (!isSize(first)) throw new TypeError('first must be a non-negative safe integer');
    this.#heads.length = 0;
    this.#heights.length = 0;
    this.#starts.length = 0;
    this.#next = first;
  }

  /** Appends the next leaf given by its hash input, 0x00 || data (see `leafHash`). */
  appendLeafInput(prefixed: Uint8Array): void {
    if (prefixed[0] !== LEAF_PREFIX) throw new TypeError('a leaf hash input starts with 0x00');
    this.appendLeafBinary(hash('sha256', prefixed, 'binary'));
  }

  /** Appends the next leaf given by its hash, as a 32-character latin1 string. */
  appendLeafBinary(leaf: string): void {
    if (leaf.length !== HASH_BYTES) throw new TypeError(`a leaf hash is ${HASH_BYTES} bytes`);
    if (this.#next >= Number.MAX_SAFE_INTEGER) throw new RangeError('the tree is full');
    let head = leaf;
    let height = 0;
    let start = this.#next;
    // Merge with the subtree before while it is the left sibling: same height, and its start
    // aligned to the parent's size.
    for (;;) {
      const top = this.#heights.length - 1;
      if (top < 0 || this.#heights[top] !== height || (this.#starts[top] as number) % 2 ** (height + 1) !== 0) break;
      head = nodeHashBinary(this.#heads[top] as string, head);
      start = this.#starts[top] as number;
      height += 1;
      this.#heads.pop();
      this.#heights.pop();
      this.#starts.pop();
    }
    this.#heads.push(head);
    this.#heights.push(height);
    this.#starts.push(start);
    this.#next += 1;
  }

  /** The heads (32 bytes each, concatenated) and heights of the run's subtrees, in order. */
  finish(): { heads: Buffer; heights: number[] } {
    const heads = Buffer.allocUnsafe(this.#heads.length * HASH_BYTES);
    this.#heads.forEach((h, i) => heads.write(h, i * HASH_BYTES, HASH_BYTES, 'latin1'));
    return { heads, heights: [...this.#heights] };
  }
}

/** The tree head (MTH, RFC 6962 section 2.1) of a list of leaf hashes. */
export function rootOf(leafHashes: readonly Uint8Array[]): Buffer {
  const frontier = new MerkleFrontier();
  for (const leaf of leafHashes) frontier.append(leaf);
  return frontier.root();
}

/** A subtree source over leaf hashes held in memory (tests, small logs). */
export function subtreeSourceOf(leafHashes: readonly Uint8Array[]): SubtreeSource {
  return async (start, end) => rootOf(leafHashes.slice(start, end));
}
