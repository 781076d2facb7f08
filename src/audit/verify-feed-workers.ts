/**
 * Where the offline verifier's feed (verify-feed.ts) scans its batches: the shared memory the
 * batches are gathered in, and the scanner on this thread or in worker threads
 * (verify-worker.ts), whose results come back in any order and are matched by id.
 */
import { Worker } from 'node:worker_threads';
import { scanBatch, type BatchItem } from './verify-scan.ts';

/**
 * The memory batches are gathered in: a few fixed buffers ("slots") on SharedArrayBuffers, so
 * worker threads read a batch where this thread wrote it, with no copy, no transfer and no new
 * memory per batch (fresh buffers per batch made the garbage collector work hard). A slot is not
 * written again until its batch's results have been applied.
 */
export class Slots {
  readonly buffers: Buffer[] = [];
  #free: number[] = [];

  constructor(count: number, size: number) {
    for (let i = 0; i < count; i += 1) {
      this.buffers.push(Buffer.from(new SharedArrayBuffer(size)));
      this.#free.push(i);
    }
  }

  /** A free slot, or -1 when all are in use. */
  take(): number {
    return this.#free.pop() ?? -1;
  }

  release(slot: number): void {
    this.#free.push(slot);
  }

  /** Replaces a slot's buffer by a larger one (a line longer than a batch), keeping `keep` bytes. */
  grow(slot: number, size: number, keep: number): Buffer {
    const grown = Buffer.from(new SharedArrayBuffer(size));
    (this.buffers[slot] as Buffer).copy(grown, 0, 0, keep);
    this.buffers[slot] = grown;
    return grown;
  }
}

export interface InFlight {
  slot: number;
  length: number;
  scanned: Promise<BatchItem[]>;
  done: boolean;
}

export interface Scanner {
  /** The items of the batch in `slot`'s first `length` bytes. */
  scan(slot: number, length: number): Promise<BatchItem[]>;
  close(): Promise<void>;
}

/** Scans on the calling thread. */
export function inThread(slots: Slots): Scanner {
  return {
    scan: async (slot, length) => scanBatch((slots.buffers[slot] as Buffer).subarray(0, length)),
    close: async () => {},
  };
}

interface WorkerReply {
  id: number;
  items?: BatchItem[];
  error?: string;
  ready?: true;
}

/**
 * Scans in worker threads (verify-worker.ts), batches handed out in turn. Results come back in
 * any order and are matched by id (the caller awaits them in its own order).
 */
export class WorkerScanner implements Scanner {
  #slots: Slots;
  #workers: { worker: Worker; known: SharedArrayBuffer[] }[];
  #next = 0;
  #id = 0;
  #waiting = new Map<number, { resolve: (items: BatchItem[]) => void; reject: (e: Error) => void }>();
  #starting: number;
  #closing = false;
  /** Set when a worker failed or stopped: no batch is sent to a worker that cannot answer. */
  #failed: Error | null = null;

  /** Whether every worker has loaded its modules and can take batches at once. */
  get ready(): boolean {
    return this.#starting === 0;
  }

  constructor(count: number, slots: Slots, module: URL) {
    this.#slots = slots;
    this.#starting = count;
    this.#workers = Array.from({ length: count }, () => {
      const worker = new Worker(module);
      worker.on('message', (reply: WorkerReply) => this.#settle(reply));
      worker.on('error', (err) => this.#failAll(err));
      // A worker that stops without an error (killed, out of memory) must not leave a batch waiting forever.
      worker.on('exit', (code) => {
        if (!this.#closing) this.#failAll(new Error(`it exited with code ${code}`));
      });
      return { worker, known: [] };
    });
  }

  #settle(reply: WorkerReply): void {
    if (reply.ready === true) {
      this.#starting -= 1;
      return;
    }
    const waiting = this.#waiting.get(reply.id);
    if (waiting === undefined) return;
    this.#waiting.delete(reply.id);
    if (reply.error !== undefined || reply.items === undefined) waiting.reject(new Error(`the verifier's worker failed: ${reply.error ?? 'no result'}`));
    else waiting.resolve(reply.items);
  }

  #failAll(err: Error): void {
    // A worker that stopped between batches would otherwise leave the next batch sent to it waiting forever.
    this.#failed ??= err;
    for (const waiting of this.#waiting.values()) waiting.reject(new Error(`the verifier's worker failed: ${err.message}`, { cause: err }));
    this.#waiting.clear();
  }

  scan(slot: number, length: number): Promise<BatchItem[]> {
    if (this.#failed !== null) return Promise.reject(new Error(`the verifier's worker failed: ${this.#failed.message}`, { cause: this.#failed }));
    const id = (this.#id += 1);
    const target = this.#workers[this.#next] as { worker: Worker; known: SharedArrayBuffer[] };
    this.#next = (this.#next + 1) % this.#workers.length;
    const memory = (this.#slots.buffers[slot] as Buffer).buffer as SharedArrayBuffer;
    // A worker is sent a slot's memory once (and again when the slot grew).
    const send = target.known[slot] === memory ? undefined : memory;
    target.known[slot] = memory;
    return new Promise((resolve, reject) => {
      this.#waiting.set(id, { resolve, reject });
      target.worker.postMessage({ id, slot, length, memory: send });
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    await Promise.all(this.#workers.map((w) => w.worker.terminate()));
  }
}
