/**
 * A worker thread of the offline verifier (verify.ts): scans and hashes batches of export lines
 * with `scanBatch`, reading them where the verifier wrote them (slots of shared memory, each sent
 * once), and hands back the items. Imports only the scanner.
 */
import { parentPort } from 'node:worker_threads';
import { scanBatch } from './verify-scan.ts';

interface BatchRequest {
  id: number;
  slot: number;
  length: number;
  /** The slot's memory, when it is new to this worker. */
  memory?: SharedArrayBuffer;
}

const port = parentPort;
if (port === null) throw new Error('verify-worker.ts runs as a worker thread');
const slots: Buffer[] = [];
// Loading this module takes a while: the verifier scans on its own thread until workers say so.
port.postMessage({ ready: true });

port.on('message', ({ id, slot, length, memory }: BatchRequest) => {
  try {
    if (memory !== undefined) slots[slot] = Buffer.from(memory);
    const buffer = slots[slot];
    if (buffer === undefined) throw new Error(`no memory for slot ${slot}`);
    port.postMessage({ id, items: scanBatch(buffer.subarray(0, length)) });
  } catch (err) {
    port.postMessage({ id, error: (err as Error).message });
  }
});
