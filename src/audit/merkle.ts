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
 * size-exception: the RFC 6962 algorithms (hashing, frontier, inclusion and consistency proofs and
 * their verification) kept side by side with the RFC text they follow; 14 lines over. split by
 * concern is pending (issue 17); no measured reason to keep it whole.
 */
import { hash } from 'node:crypto';

/** SHA-256 output length, the length of every hash in the tree. */
export const HASH_BYTES = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

// One reusable buffer for node hashing: hashing is synchronous, so no two calls overlap, and
// filling it beats allocating a 65-byte concatenation per node on the verifier's hot path.
const nodeInput = Buffer.alloc(1 + 2 * HASH_BYTES);

function sha256(data: Uint8Array | string): Buffer {
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
function isSize(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** The largest power of two strictly less than n (n >= 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** The number of set bits of a safe integer. */
function popcount(n: number): number {
  let count = 0;
  for (let v = n; v > 0; v = Math.floor(v / 2)) count += v % 2;
  return count;
}

// The frontier keeps its hashes as 32-character latin1 strings: node:crypto returns a hash as
// a string several times faster than as a new Buffer, and a verifier spends most of its time
// in exactly these hashes (one leaf and, amortised, one node per event).
function nodeHashBinary(left: string, right: string): string {
  nodeInput[0] = NODE_PREFIX;
  nodeInput.write(left, 1, HASH_BYTES, 'latin1');
  nodeInput.write(right, 1 + HASH_BYTES, HASH_BYTES, 'latin1');
  return hash('sha256', nodeInput, 'binary');
}

function binaryOf(h: Uint8Array): string {
  return Buffer.from(h.buffer, h.byteOffset, h.length).toString('latin1');
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

/**
 * Where proofs read the tree from: the head of the leaves [start, end). A store answers this
 * from saved subtree heads; `subtreeSourceOf` answers it from a list of leaves.
 */
export type SubtreeSource = (start: number, end: number) => Promise<Buffer>;

/** A subtree source over leaf hashes held in memory (tests, small logs). */
export function subtreeSourceOf(leafHashes: readonly Uint8Array[]): SubtreeSource {
  return async (start, end) => rootOf(leafHashes.slice(start, end));
}

/**
 * The audit path of leaf `index` in the tree of `size` leaves (RFC 9162 section 2.1.3.1),
 * nearest sibling first. RangeError unless 0 <= index < size.
 */
export async function inclusionProof(index: number, size: number, subtree: SubtreeSource): Promise<Buffer[]> {
  if (!isSize(size) || !isSize(index) || index >= size) throw new RangeError(`no leaf ${index} in a tree of ${size}`);
  // PATH(m, D[n]) recursion unrolled from the root down; siblings are collected top-down and
  // returned bottom-up.
  const siblings: Buffer[] = [];
  let start = 0;
  let end = size;
  while (end - start > 1) {
    const k = splitPoint(end - start);
    if (index - start < k) {
      siblings.push(await subtree(start + k, end));
      end = start + k;
    } else {
      siblings.push(await subtree(start, start + k));
      start += k;
    }
  }
  return siblings.reverse();
}

/**
 * The consistency proof between the trees of `from` and `to` leaves (RFC 9162 section 2.1.4.1).
 * Empty when from is 0 or equals to. RangeError unless 0 <= from <= to.
 */
export async function consistencyProof(from: number, to: number, subtree: SubtreeSource): Promise<Buffer[]> {
  if (!isSize(from) || !isSize(to) || from > to) throw new RangeError(`no consistency proof from ${from} to ${to}`);
  if (from === 0 || from === to) return [];
  // SUBPROOF(m, D[n], b) unrolled: walk down towards the old tree's right edge.
  const nodes: Buffer[] = [];
  let start = 0;
  let end = to;
  let m = from;
  let complete = true;
  while (m !== end - start) {
    const k = splitPoint(end - start);
    if (m <= k) {
      nodes.push(await subtree(start + k, end));
      end = start + k;
    } else {
      nodes.push(await subtree(start, start + k));
      start += k;
      m -= k;
      complete = false;
    }
  }
  // SUBPROOF(m, D[m], true) is empty: the verifier already holds the old head.
  if (!complete) nodes.push(await subtree(start, end));
  return nodes.reverse();
}

function isHash(h: unknown): h is Uint8Array {
  return h instanceof Uint8Array && h.length === HASH_BYTES;
}

function isProof(proof: unknown): proof is Uint8Array[] {
  return Array.isArray(proof) && proof.every(isHash);
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(b);
}

/**
 * Whether `proof` shows the leaf `leaf` at `index` in the tree of `size` leaves with head `root`
 * (RFC 9162 section 2.1.3.2). False for any malformed input, never a throw.
 */
export function verifyInclusion(leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): boolean {
  if (!isSize(index) || !isSize(size) || index >= size) return false;
  if (!isHash(leaf) || !isHash(root) || !isProof(proof)) return false;
  let fn = index;
  let sn = size - 1;
  let r: Buffer = Buffer.from(leaf);
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      // A right edge that is not a right child: climb until it is one, or the root.
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(r, root);
}

/**
 * Whether `proof` shows that the tree of `size2` leaves with head `root2` extends the tree of
 * `size1` leaves with head `root1` (RFC 9162 section 2.1.4.2). With equal sizes the proof must be
 * empty and the heads equal; from the empty tree the proof must be empty and `root1` the empty
 * tree's head. False for any malformed input, never a throw.
 */
export function verifyConsistency(size1: number, size2: number, proof: readonly Uint8Array[], root1: Uint8Array, root2: Uint8Array): boolean {
  if (!isSize(size1) || !isSize(size2) || size1 > size2) return false;
  if (!(root1 instanceof Uint8Array) || !(root2 instanceof Uint8Array) || !Array.isArray(proof)) return false;
  if (size1 === size2) {
    // Nothing to prove beyond the heads being the same bytes.
    if (proof.length !== 0 || !equalBytes(root1, root2)) return false;
    return size1 !== 0 || equalBytes(root1, emptyRoot());
  }
  if (size1 === 0) return proof.length === 0 && equalBytes(root1, emptyRoot()) && isHash(root2);
  if (!isHash(root1) || !isHash(root2) || !isProof(proof) || proof.length === 0) return false;

  // An old tree that is a perfect subtree is itself the first node of the path.
  const path: Uint8Array[] = isPowerOfTwo(size1) ? [root1, ...proof] : [...proof];
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (fn % 2 === 1) {
    fn = (fn - 1) / 2;
    sn = Math.floor(sn / 2);
  }
  let fr: Buffer = Buffer.from(path[0] as Uint8Array);
  let sr: Buffer = fr;
  for (let i = 1; i < path.length; i += 1) {
    const c = path[i] as Uint8Array;
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr);
      sr = nodeHash(c, sr);
      while (fn % 2 === 0 && fn !== 0) {
        fn /= 2;
        sn = Math.floor(sn / 2);
      }
    } else {
      sr = nodeHash(sr, c);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 && equalBytes(fr, root1) && equalBytes(sr, root2);
}

function isPowerOfTwo(n: number): boolean {
  return n > 0 && splitPoint(n * 2) === n;
}
