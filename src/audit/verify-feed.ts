/**
 * How the offline verifier reads a byte stream (verify.ts): bytes are gathered in batches of
 * complete lines that the scanner reads (verify-scan.ts: runs of canonical event lines hashed in
 * one go, everything else as lines for the verifier's general path), possibly in worker threads
 * (verify-worker.ts); results are applied strictly in file order, a few batches in flight, so
 * memory stays flat whatever the file's length.
 * (The batches' memory and the worker threads are in verify-feed-workers.ts.)
 */
import { availableParallelism } from 'node:os';
import { inThread, Slots, WorkerScanner, type InFlight, type Scanner } from './verify-feed-workers.ts';
import type { EventRun } from './verify-scan.ts';

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

const DEFAULT_BATCH_BYTES = 1024 * 1024;
/** Room for the chunk that completes a batch beyond `batchBytes` before a slot must grow. */
const SLOT_SLACK = 64 * 1024;
/** Input read before worker threads are started, when their number is not given. */
const WORKERS_AFTER_BYTES = 32 * 1024 * 1024;
const MAX_AUTO_THREADS = 2;
const IN_FLIGHT_PER_WORKER = 4;

/** Decodes lines of bytes or text and hands them to the verifier. */
class LineDecoder {
  // ignoreBOM: a byte-order mark is kept, so it fails JSON parsing instead of vanishing.
  #utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  #verifier: LineSink;

  constructor(verifier: LineSink) {
    this.#verifier = verifier;
  }

  /** One line of bytes (without its "\n"); true once the file has failed. */
  bytes(bytes: Buffer): boolean {
    let text: string;
    try {
      text = this.#utf8.decode(bytes);
    } catch {
      this.#verifier.failNextLine('MALFORMED_LINE', 'the line is not UTF-8');
      return true;
    }
    return this.#verifier.accept(text);
  }

  /** Lines of text; true once the file has failed. */
  text(text: string): boolean {
    let start = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
      if (this.#verifier.accept(text.slice(start, nl))) return true;
      start = nl + 1;
    }
    return this.#verifier.accept(text.slice(start));
  }

  /** Complete lines in `bytes` (which ends just before a "\n"); one decode for all of them. */
  block(bytes: Buffer): boolean {
    let text: string;
    try {
      text = this.#utf8.decode(bytes);
    } catch {
      // Find the line at fault, reading the ones before it first.
      let start = 0;
      for (let nl = bytes.indexOf(10); ; nl = bytes.indexOf(10, start)) {
        const end = nl < 0 ? bytes.length : nl;
        if (this.bytes(bytes.subarray(start, end))) return true;
        if (nl < 0) return false;
        start = nl + 1;
      }
    }
    return this.text(text);
  }
}

/**
 * The batches of a byte stream: the slot being filled, and the batches sent to the scanner,
 * applied strictly in file order, a few in flight.
 */
class Batches {
  #verifier: LineSink;
  #lines: LineDecoder;
  #options: FeedOptions;
  #threads: number;
  #startWorkersAfter: number;
  #batchBytes: number;
  #maxInFlight: number;
  #slots: Slots;
  #here: Scanner;
  #workers: WorkerScanner | null = null;
  /** Batches not applied yet, in file order: `items` is set once scanned. */
  #inFlight: InFlight[] = [];
  #atWorkers = 0;
  #fillSlot: number;
  /** The slot being filled, and its bytes filled. */
  fill: Buffer;
  filled = 0;
  bytesRead = 0;

  constructor(verifier: LineSink, lines: LineDecoder, options: FeedOptions) {
    this.#verifier = verifier;
    this.#lines = lines;
    this.#options = options;
    this.#batchBytes = Math.max(1, Math.floor(options.batchBytes ?? DEFAULT_BATCH_BYTES));
    const auto = options.threads === undefined;
    this.#threads = auto ? (availableParallelism() < 2 ? 0 : Math.min(MAX_AUTO_THREADS, availableParallelism())) : Math.max(0, Math.floor(options.threads ?? 0));
    this.#startWorkersAfter = auto ? WORKERS_AFTER_BYTES : 0;
    // The slot being filled, one for the rest of a line, the batches at workers (a few each, so
    // that none waits on this thread being scheduled on a busy machine), and a few scanned here
    // that wait for an earlier batch at a worker.
    this.#maxInFlight = IN_FLIGHT_PER_WORKER * this.#threads;
    this.#slots = new Slots(this.#maxInFlight + (this.#threads === 0 ? 2 : 4), this.#batchBytes + SLOT_SLACK);
    this.#here = inThread(this.#slots);
    this.#fillSlot = this.#slots.take();
    this.fill = this.#slots.buffers[this.#fillSlot] as Buffer;
  }

  /** Whether enough is filled to send a batch. */
  get full(): boolean {
    return this.filled >= this.#batchBytes;
  }

  /** Adds bytes to the slot being filled, growing it when they do not fit. */
  append(bytes: Buffer): void {
    if (this.filled + bytes.length > this.fill.length) this.fill = this.#slots.grow(this.#fillSlot, Math.max(2 * this.fill.length, this.filled + bytes.length), this.filled);
    bytes.copy(this.fill, this.filled);
    this.filled += bytes.length;
  }

  /** Applies the oldest batch in flight and frees its slot; true once the file has failed. */
  async applyOldest(): Promise<boolean> {
    const { slot, length, scanned } = this.#inFlight.shift() as InFlight;
    const batch = (this.#slots.buffers[slot] as Buffer).subarray(0, length);
    let failed = false;
    for (const item of await scanned) {
      if (item.kind === 'run' && this.#verifier.acceptRun(item)) continue;
      if (this.#lines.block(batch.subarray(item.start, item.end))) {
        failed = true;
        break;
      }
    }
    this.#slots.release(slot);
    return failed || this.#verifier.failed;
  }

  /** Applies every batch in flight; true once the file has failed. */
  async drain(): Promise<boolean> {
    while (this.#inFlight.length > 0) if (await this.applyOldest()) return true;
    return false;
  }

  /** Sends the complete lines of the slot being filled to the scanner; the partial line after them moves to a fresh slot. */
  async dispatch(): Promise<boolean> {
    const last = this.fill.subarray(0, this.filled).lastIndexOf(10);
    if (last < 0) return false;
    let next = this.#slots.take();
    while (next < 0) {
      if (await this.applyOldest()) return true;
      next = this.#slots.take();
    }
    const rest = this.filled - last - 1;
    let target = this.#slots.buffers[next] as Buffer;
    if (target.length < rest + SLOT_SLACK) target = this.#slots.grow(next, rest + this.#batchBytes + SLOT_SLACK, 0);
    this.fill.copy(target, 0, last + 1, this.filled);
    if (this.#workers === null && this.#threads > 0 && this.bytesRead >= this.#startWorkersAfter) {
      this.#workers = new WorkerScanner(this.#threads, this.#slots, this.#options.workerModule ?? new URL('./verify-worker.ts', import.meta.url));
    }
    // Until the workers have started, batches are scanned here (a worker's first batch would
    // otherwise wait for its modules to load).
    // When every worker has its share queued, this thread scans the batch itself rather than
    // wait: no thread idles while there is input.
    if (this.#workers?.ready === true && this.#atWorkers < this.#maxInFlight) {
      this.#atWorkers += 1;
      const entry: InFlight = { slot: this.#fillSlot, length: last, scanned: this.#workers.scan(this.#fillSlot, last), done: false };
      entry.scanned.then(
        () => {
          entry.done = true;
          this.#atWorkers -= 1;
        },
        () => {},
      );
      this.#inFlight.push(entry);
    } else {
      this.#inFlight.push({ slot: this.#fillSlot, length: last, scanned: this.#here.scan(this.#fillSlot, last), done: true });
    }
    this.#fillSlot = next;
    this.fill = target;
    this.filled = rest;
    // Apply whatever is ready, in order, without waiting for a worker.
    while (this.#inFlight.length > 0 && (this.#inFlight[0] as InFlight).done) if (await this.applyOldest()) return true;
    return false;
  }

  /** Drops the batches still in flight (after a failure their results are not needed) and stops the workers. */
  async close(): Promise<void> {
    for (const pending of this.#inFlight) pending.scanned.catch(() => {});
    await this.#workers?.close();
  }
}

/**
 * Feeds a stream of chunks (Buffers or strings) to the verifier as lines. Bytes are gathered in
 * batches of complete lines that the scanner reads (verify-scan.ts: runs of canonical event lines
 * hashed in one go, everything else as lines for `accept`), possibly in worker threads; results
 * are applied strictly in file order, a few batches in flight, so memory stays flat.
 */
export async function feedChunks(stream: NodeJS.ReadableStream, verifier: LineSink, options: FeedOptions): Promise<void> {
  const lines = new LineDecoder(verifier);
  const batches = new Batches(verifier, lines, options);
  /** Text left over from string chunks: a partial line. */
  let textCarry = '';
  try {
    for await (const chunk of stream) {
      if (typeof chunk === 'string') {
        if (batches.filled > 0) {
          // Bytes before this text: their complete lines first, then the rest as text.
          if ((await batches.dispatch()) || (await batches.drain())) return;
          textCarry = batches.fill.toString('utf8', 0, batches.filled) + textCarry;
          batches.filled = 0;
        } else if (await batches.drain()) {
          return;
        }
        const last = chunk.lastIndexOf('\n');
        if (last < 0) {
          textCarry += chunk;
        } else {
          const head = textCarry + chunk.slice(0, last);
          textCarry = chunk.slice(last + 1);
          if (lines.text(head)) return;
        }
        if (textCarry.length > MAX_LINE_BYTES) {
          verifier.failNextLine('MALFORMED_LINE', `a line longer than ${MAX_LINE_BYTES} bytes`);
          return;
        }
        continue;
      }
      let bytes = chunk as Buffer;
      batches.bytesRead += bytes.length;
      if (textCarry.length > 0) {
        bytes = Buffer.concat([Buffer.from(textCarry, 'utf8'), bytes]);
        textCarry = '';
      }
      batches.append(bytes);
      if (batches.full && (await batches.dispatch())) return;
      // What is left is a partial line: too long, and it fails once the lines before it are read.
      if (batches.filled > MAX_LINE_BYTES && batches.fill.subarray(0, batches.filled).lastIndexOf(10) < 0) {
        if (await batches.drain()) return;
        verifier.failNextLine('MALFORMED_LINE', `a line longer than ${MAX_LINE_BYTES} bytes`);
        return;
      }
    }
    if (batches.filled > 0 && (await batches.dispatch())) return;
    if (await batches.drain()) return;
    if (batches.filled > 0) lines.bytes(batches.fill.subarray(0, batches.filled));
    else if (textCarry.length > 0) verifier.accept(textCarry);
  } finally {
    await batches.close();
  }
}
