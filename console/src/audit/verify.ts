/**
 * Verifies an audit log IN THE BROWSER, as the offline verifier (src/audit/verify.ts) does on a
 * server, with nothing but WebCrypto and RFC 8785 canonical JSON:
 *
 * 1. The export (`gatehouse-audit-export/1`, JSON Lines) is read line by line; each event's Merkle
 *    leaf is SHA-256(0x00 || canonical JSON of the event) and the RFC 6962 tree is grown with a
 *    frontier of perfect subtrees (from a `pruned` line's frontier when retention removed the
 *    oldest events).
 * 2. At each checkpoint line the tree head of the first `size` events must equal the checkpoint's
 *    `root`, and its `previous` must be base64url(SHA-256(canonical bytes of the checkpoint
 *    before it)): a changed, dropped or reordered event or checkpoint breaks one of them.
 * 3. Signatures are checked against the node's PUBLISHED keys (/.well-known/jwks.json), never the
 *    keys in the export: a key is used only when its RFC 7638 thumbprint is the checkpoint's
 *    `kid`. The newest checkpoint must verify with a published key; an older one signed with a
 *    key no longer published is covered by the chain of `previous` hashes up to it.
 */
import canonicalize from 'canonicalize';
import { api, unwrap } from '../api/client.ts';

export interface Jwk {
  kty: string;
  crv: string;
  x: string;
  kid?: string;
}

interface Checkpoint {
  log: string;
  size: number;
  root: string;
  previous: string | null;
  kid: string;
  time: string;
}

export interface VerifyResult {
  ok: boolean;
  events: number;
  checkpoints: number;
  /** The newest checkpoint, when there is one. */
  latest: Checkpoint | null;
  /** Checkpoints whose signature a published key verified. */
  signaturesChecked: number;
  /** Events after the newest checkpoint (not covered by a signature). */
  uncovered: number;
  failures: string[];
}

const enc = new TextEncoder();

function b64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let s = '';
  for (const b of view) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

function fromB64url(text: string): Uint8Array<ArrayBuffer> {
  const s = atob(text.replaceAll('-', '+').replaceAll('_', '/'));
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i += 1) out[i] = s.charCodeAt(i);
  return out;
}

async function sha256(data: Uint8Array<ArrayBuffer>): Promise<Uint8Array<ArrayBuffer>> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', data));
}

function canonicalBytes(value: unknown): Uint8Array<ArrayBuffer> {
  const text = canonicalize(value);
  if (text === undefined) throw new TypeError('value has no canonical JSON');
  return enc.encode(text);
}

function prefixed(prefix: number, ...parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(1 + parts.reduce((n, p) => n + p.length, 0));
  out[0] = prefix;
  let at = 1;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The RFC 6962 tree as its perfect subtrees, largest first. */
class Frontier {
  readonly nodes: Array<{ hash: Uint8Array<ArrayBuffer>; size: number }> = [];
  size = 0;

  async add(leaf: Uint8Array<ArrayBuffer>): Promise<void> {
    this.nodes.push({ hash: leaf, size: 1 });
    this.size += 1;
    for (;;) {
      const right = this.nodes[this.nodes.length - 1];
      const left = this.nodes[this.nodes.length - 2];
      if (!left || !right || left.size !== right.size) break;
      this.nodes.splice(-2, 2, { hash: await sha256(prefixed(1, left.hash, right.hash)), size: left.size * 2 });
    }
  }

  async root(): Promise<string> {
    if (this.nodes.length === 0) return b64url(await sha256(new Uint8Array(0)));
    let acc = this.nodes[this.nodes.length - 1]!.hash;
    for (let i = this.nodes.length - 2; i >= 0; i -= 1) acc = await sha256(prefixed(1, this.nodes[i]!.hash, acc));
    return b64url(acc);
  }

  /** Starts from a pruned log's frontier at `size` (hashes of the perfect subtrees, largest first). */
  restore(size: number, hashes: readonly string[]): void {
    let rest = size;
    this.nodes.length = 0;
    for (const h of hashes) {
      const top = 2 ** Math.floor(Math.log2(rest));
      this.nodes.push({ hash: fromB64url(h), size: top });
      rest -= top;
    }
    this.size = size;
  }
}

/** The RFC 7638 thumbprint of an Ed25519 public JWK: the kid a checkpoint names. */
export async function thumbprint(jwk: Jwk): Promise<string> {
  return b64url(await sha256(enc.encode(`{"crv":"${jwk.crv}","kty":"${jwk.kty}","x":"${jwk.x}"}`)));
}

async function verifySignature(jwk: Jwk, data: Uint8Array<ArrayBuffer>, signature: string): Promise<boolean> {
  try {
    const key = await crypto.subtle.importKey('jwk', { kty: jwk.kty, crv: jwk.crv, x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
    return await crypto.subtle.verify({ name: 'Ed25519' }, key, fromB64url(signature), data);
  } catch {
    return false;
  }
}

interface Line {
  type?: string;
  index?: number;
  event?: unknown;
  checkpoint?: Checkpoint;
  signature?: string;
  upTo?: number;
  frontier?: { size: number; hashes: string[] };
  events?: number;
  checkpoints?: number;
}

/** Verifies the text of an export against the published keys `jwks`. */
export async function verifyExport(text: string, jwks: readonly Jwk[]): Promise<VerifyResult> {
  const published = new Map<string, Jwk>();
  for (const k of jwks) if (k.kty === 'OKP' && k.crv === 'Ed25519') published.set(await thumbprint(k), k);
  const failures: string[] = [];
  const tree = new Frontier();
  const result: VerifyResult = { ok: false, events: 0, checkpoints: 0, latest: null, signaturesChecked: 0, uncovered: 0, failures };
  let previousHash: string | null | undefined;
  let sawEnd = false;
  let latestSignatureOk = false;
  for (const [n, raw] of text.split('\n').entries()) {
    if (!raw.trim()) continue;
    let line: Line;
    try {
      line = JSON.parse(raw) as Line;
    } catch {
      failures.push(`Line ${n + 1} is not JSON.`);
      break;
    }
    if (line.type === 'pruned' && line.frontier) {
      tree.restore(line.frontier.size, line.frontier.hashes);
    } else if (line.type === 'event') {
      if (line.index !== tree.size) failures.push(`Event ${tree.size} is missing (found index ${String(line.index)}).`);
      await tree.add(await sha256(prefixed(0, canonicalBytes(line.event))));
      result.events += 1;
    } else if (line.type === 'checkpoint' && line.checkpoint && line.signature) {
      const cp = line.checkpoint;
      result.checkpoints += 1;
      if (cp.size !== tree.size) failures.push(`Checkpoint of size ${cp.size} comes after ${tree.size} events.`);
      else if ((await tree.root()) !== cp.root) failures.push(`The events up to ${cp.size} do not give the signed root of the checkpoint at ${cp.time}: an event was changed, added or removed.`);
      if (previousHash !== undefined && cp.previous !== previousHash) failures.push(`The checkpoint at ${cp.time} does not chain to the one before it.`);
      const bytes = canonicalBytes(cp);
      previousHash = b64url(await sha256(bytes));
      const key = published.get(cp.kid);
      latestSignatureOk = key ? await verifySignature(key, bytes, line.signature) : false;
      if (key && !latestSignatureOk) failures.push(`The signature of the checkpoint at ${cp.time} does not verify with the published key ${cp.kid}.`);
      if (latestSignatureOk) result.signaturesChecked += 1;
      result.latest = cp;
    } else if (line.type === 'end') {
      sawEnd = true;
      if (line.events !== result.events || line.checkpoints !== result.checkpoints) failures.push('The export\'s end line does not count the lines it holds.');
    }
  }
  if (!sawEnd) failures.push('The export was cut short (no end line).');
  if (!result.latest) failures.push('The log has no signed checkpoint yet.');
  else if (!latestSignatureOk && !failures.some((f) => f.startsWith('The signature'))) failures.push(`The newest checkpoint is signed with ${result.latest.kid}, which is not a published key.`);
  result.uncovered = tree.size - (result.latest?.size ?? 0);
  result.ok = failures.length === 0;
  return result;
}

/**
 * Whether `signature` (base64url Ed25519) over the canonical bytes of `value` verifies with the
 * published key whose thumbprint is `kid` (the trust report is signed this way).
 */
export async function verifySignedValue(value: unknown, kid: string, signature: string): Promise<boolean> {
  const jwks = await unwrap(api.GET('/.well-known/jwks.json'));
  for (const k of jwks.keys) if ((await thumbprint(k)) === kid) return verifySignature(k, canonicalBytes(value), signature);
  return false;
}

/** Loads the export (through `exportText`) and the node's published keys, and verifies the log. */
export async function verifyLog(exportText: () => Promise<string>): Promise<VerifyResult> {
  const [text, jwks] = await Promise.all([exportText(), unwrap(api.GET('/.well-known/jwks.json'))]);
  return verifyExport(text, jwks.keys);
}
