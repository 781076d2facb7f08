/**
 * How the offline verifier reads a byte stream (verify.ts): bytes are gathered in batches of
 * complete lines that the scanner reads (verify-scan.ts: runs of canonical event lines hashed in
 * one go, everything else as lines for the verifier's general path), possibly in worker threads
 * (verify-worker.ts); results are applied strictly in file order, a few batches in flight, so
 * memory stays flat whatever the file's length.
 *
 * size-exception: feedChunks is the verifier's streaming loop over an export (one state machine
 * across chunk boundaries); split by concern is pending (issue 17); no measured reason to keep it
 * whole.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { scanBatch, type BatchItem, type EventRun } from './verify-scan.ts';

/** What the feed needs of the verifier. */
export interface LineSink {
  /** Takes a run of scanned event lines whole; false when its lines must come one by one. */
  acceptRun(run: EventRun): boolean;
  /** Reads one line (without its "\n"); true once the file has failed. */
  accept(text: string): boolean;
  /** Fails the line after the last one read (one that cannot be decoded or is too long). */
  failNextLine(reason: 'MALFORMED_LINE', message: string): void;
  readonly failed: boolean;
}

/** The stream options the feed reads (see VerifyOptions). */
export interface FeedOptions {
  threads?: number;
  batchBytes?: number;
  workerModule?: URL;
}

const MAX_LINE_BYTES = 16 * 1024 * 1024;

/**
 * The memory batches are gathered in: a few fixed buffers ("slots") on SharedArrayBuffers, so
 * worker threads read a batch where this thread wrote it, with no copy, no transfer and no new
 * memory per batch (fresh buffers per batch made the garbage collector work hard). A slot is not
 * written again until its batch's results have been applied.
 */
class Slots {
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

interface InFlight {
  slot: number;
  length: number;
  scanned: Promise<BatchItem[]>;
  done: boolean;
}

interface Scanner {
  /** The items of the batch in `slot`'s first `length` bytes. */
  scan(slot: number, length: number): Promise<BatchItem[]>;
  close(): Promise<void>;
}

/** Scans on the calling thread. */
function inThread(slots: Slots): Scanner {
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
class WorkerScanner implements Scanner {
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

const DEFAULT_BATCH_BYTES = 1024 * 1024;
/** Room for the chunk that completes a batch beyond `batchBytes` before a slot must grow. */
const SLOT_SLACK = 64 * 1024;
/** Input read before worker threads are started, when their number is not given. */
const WORKERS_AFTER_BYTES = 32 * 1024 * 1024;
const MAX_AUTO_THREADS = 2;
const IN_FLIGHT_PER_WORKER = 4;

/**
 * Feeds a stream of chunks (Buffers or strings) to the verifier as lines. Bytes are gathered in
 * batches of complete lines that the scanner reads (verify-scan.ts: runs of canonical event lines
 * hashed in one go, everything else as lines for `accept`), possibly in worker threads; results
 * are applied strictly in file order, a few batches in flight, so memory stays flat.
 */
export async function feedChunks(stream: NodeJS.ReadableStream, verifier: LineSink, options: FeedOptions): Promise<void> {
  // ignoreBOM: a byte-order mark is kept, so it fails JSON parsing instead of vanishing.
  const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const batchBytes = Math.max(1, Math.floor(options.batchBytes ?? DEFAULT_BATCH_BYTES));
  const auto = options.threads === undefined;
  const threads = auto ? (availableParallelism() < 2 ? 0 : Math.min(MAX_AUTO_THREADS, availableParallelism())) : Math.max(0, Math.floor(options.threads ?? 0));
  const startWorkersAfter = auto ? WORKERS_AFTER_BYTES : 0;
  // The slot being filled, one for the rest of a line, the batches at workers (a few each, so
  // that none waits on this thread being scheduled on a busy machine), and a few scanned here
  // that wait for an earlier batch at a worker.
  const maxInFlight = IN_FLIGHT_PER_WORKER * threads;
  const slots = new Slots(maxInFlight + (threads === 0 ? 2 : 4), batchBytes + SLOT_SLACK);

  const acceptBytes = (bytes: Buffer): boolean => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      verifier.failNextLine('MALFORMED_LINE', 'the line is not UTF-8');
      return true;
    }
    return verifier.accept(text);
  };

  const acceptText = (text: string): boolean => {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (verifier.accept(text.slice(start, nl))) return true;
      start = nl + 1;
    }
    return verifier.accept(text.slice(start));
  };

  /** Complete lines in `bytes` (which ends just before a "\n"); one decode for all of them. */
  const acceptBlock = (bytes: Buffer): boolean => {
    let text: string;
    try {
      text = utf8.decode(bytes);
    } catch {
      // Find the line at fault, reading the ones before it first.
      let start = 0;
      for (let nl = bytes.indexOf(10); ; nl = bytes.indexOf(10, start)) {
        const end = nl < 0 ? bytes.length : nl;
        if (acceptBytes(bytes.subarray(start, end))) return true;
        if (nl < 0) return false;
        start = nl + 1;
      }
    }
    return acceptText(text);
  };

  const here = inThread(slots);
  let workers: WorkerScanner | null = null;
  let bytesRead = 0;
  /** Batches not applied yet, in file order: `items` is set once scanned. */
  const inFlight: InFlight[] = [];
  let atWorkers = 0;
  let fillSlot = slots.take();
  let fill = slots.buffers[fillSlot] as Buffer;
  let filled = 0;
  /** Text left over from string chunks: a partial line. */
  let textCarry = '';

  /** Applies the oldest batch in flight and frees its slot; true once the file has failed. */
  const applyOldest = async (): Promise<boolean> => {
    const { slot, length, scanned } = inFlight.shift() as InFlight;
    const batch = (slots.buffers[slot] as Buffer).subarray(0, length);
    let failed = false;
    for (const item of await scanned) {
      if (item.kind === 'run' && verifier.acceptRun(item)) continue;
      if (acceptBlock(batch.subarray(item.start, item.end))) {
        failed = true;
        break;
      }
    }
    slots.release(slot);
    return failed || verifier.failed;
  };

  /** Applies every batch in flight; true once the file has failed. */
  const drain = async (): Promise<boolean> => {
    while (inFlight.length > 0) if (await applyOldest()) return true;
    return false;
  };

  /** Sends the complete lines of the slot being filled to the scanner; the partial line after them moves to a fresh slot. */
  const dispatch = async (): Promise<boolean> => {
    const last = fill.subarray(0, filled).lastIndexOf(10);
    if (last < 0) return false;
    let next = slots.take();
    while (next < 0) {
      if (await applyOldest()) return true;
      next = slots.take();
    }
    const rest = filled - last - 1;
    let target = slots.buffers[next] as Buffer;
    if (target.length < rest + SLOT_SLACK) target = slots.grow(next, rest + batchBytes + SLOT_SLACK, 0);
    fill.copy(target, 0, last + 1, filled);
    if (workers === null && threads > 0 && bytesRead >= startWorkersAfter) workers = new WorkerScanner(threads, slots, options.workerModule ?? new URL('./verify-worker.ts', import.meta.url));
    // Until the workers have started, batches are scanned here (a worker's first batch would
    // otherwise wait for its modules to load).
    // When every worker has its share queued, this thread scans the batch itself rather than
    // wait: no thread idles while there is input.
    if (workers?.ready === true && atWorkers < maxInFlight) {
      atWorkers += 1;
      const entry: InFlight = { slot: fillSlot, length: last, scanned: workers.scan(fillSlot, last), done: false };
      entry.scanned.then(
        () => {
          entry.done = true;
          atWorkers -= 1;
        },
        () => {},
      );
      inFlight.push(entry);
    } else {
      inFlight.push({ slot: fillSlot, length: last, scanned: here.scan(fillSlot, last), done: true });
    }
    fillSlot = next;
    fill = target;
    filled = rest;
    // Apply whatever is ready, in order, without waiting for a worker.
    while (inFlight.length > 0 && (inFlight[0] as InFlight).done) if (await applyOldest()) return true;
    return false;
  };

  try {
    for await (const chunk of stream) {
      if (typeof chunk === 'string') {
        if (filled > 0) {
          // Bytes before this text: their complete lines first, then the rest as text.
          if ((await dispatch()) || (await drain())) return;
          textCarry = fill.toString('utf8', 0, filled) + textCarry;
          filled = 0;
        } else if (await drain()) {
          return;
        }
        const last = chunk.lastIndexOf('\n');
        if (last < 0) {
          textCarry += chunk;
        } else {
          const head = textCarry + chunk.slice(0, last);
          textCarry = chunk.slice(last + 1);
          if (acceptText(head)) return;
        }
        if (textCarry.length > MAX_LINE_BYTES) {
          verifier.failNextLine('MALFORMED_LINE', `a line longer than ${MAX_LINE_BYTES} bytes`);
          return;
        }
        continue;
      }
      let bytes = chunk as Buffer;
      bytesRead += bytes.length;
      if (textCarry.length > 0) {
        bytes = Buffer.concat([Buffer.from(textCarry, 'utf8'), bytes]);
        textCarry = '';
      }
      if (filled + bytes.length > fill.length) fill = slots.grow(fillSlot, Math.max(2 * fill.length, filled + bytes.length), filled);
      bytes.copy(fill, filled);
      filled += bytes.length;
      if (filled >= batchBytes && (await dispatch())) return;
      // What is left is a partial line: too long, and it fails once the lines before it are read.
      if (filled > MAX_LINE_BYTES && fill.subarray(0, filled).lastIndexOf(10) < 0) {
        if (await drain()) return;
        verifier.failNextLine('MALFORMED_LINE', `a line longer than ${MAX_LINE_BYTES} bytes`);
        return;
      }
    }
    if (filled > 0 && (await dispatch())) return;
    if (await drain()) return;
    if (filled > 0) acceptBytes(fill.subarray(0, filled));
    else if (textCarry.length > 0) verifier.accept(textCarry);
  } finally {
    // Batches still in flight after a failure are not needed; their results are dropped.
    for (const pending of inFlight) pending.scanned.catch(() => {});
    await (workers as WorkerScanner | null)?.close();
  }
}
