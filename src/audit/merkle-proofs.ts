/**
 * Inclusion and consistency proofs of the audit log's RFC 6962 Merkle tree (merkle.ts), and
 * their verification (RFC 9162 section 2.1.3 and 2.1.4). Verification never throws: any
 * malformed input is a proof that does not verify.
 */
import { HASH_BYTES, emptyRoot, isSize, nodeHash, splitPoint } from './merkle-hash.ts';

/**
 * Where proofs read the tree from: the head of the leaves [start, end). A store answers this
 * from saved subtree heads; `subtreeSourceOf` answers it from a list of leaves.
 */
export type SubtreeSource = (start: number, end: number) => Promise<Buffer>;

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
