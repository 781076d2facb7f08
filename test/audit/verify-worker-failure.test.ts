/**
 * The offline verifier when one of its worker threads dies: the verification ends with an error
 * naming the failure (the CLI exits 2 with it), never a verdict built on missing batches and never
 * a hang waiting for a thread that is gone.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { verifyExport } from '../../src/audit/verify.ts';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { exportLines } from './export-fixture.ts';

const key = generateSigningKey();
const text = [...exportLines({ key, events: 2_000, every: 500 })].join('');
const bytes = Buffer.from(text, 'utf8');

/** The export in 64 KiB chunks, with a pause before each after the first (the input of a slow disk or pipe). */
async function* slowly(pauseMs: number): AsyncGenerator<Buffer> {
  for (let i = 0; i * 65536 < bytes.length; i += 1) {
    if (i > 0) await sleep(pauseMs);
    yield bytes.subarray(i * 65536, (i + 1) * 65536);
  }
}

describe('a verifier worker thread that dies', () => {
  it('the untouched export verifies with the real workers (the control for the cases below)', async () => {
    const report = await verifyExport(Readable.from(slowly(0)), { threads: 1, batchBytes: 50_000 });
    expect(report).toMatchObject({ ok: true, events: 2_000, checkpoints: 4 });
  });

  it('while scanning a batch: the verification fails with the exit code instead of waiting for the batch', async () => {
    const workerModule = new URL('./fixtures/verify-worker-exits-on-batch.ts', import.meta.url);
    // The first chunks are scanned on this thread while the worker loads; the pauses (11 chunks,
    // 300 ms apart) leave it seconds to start even on a loaded machine, so later batches go to it.
    await expect(verifyExport(Readable.from(slowly(300)), { threads: 1, batchBytes: 50_000, workerModule })).rejects.toThrow(
      "the verifier's worker failed: it exited with code 3",
    );
  });

  it('between batches: the next batch is refused at once instead of being sent to a thread that is gone', async () => {
    const workerModule = new URL('./fixtures/verify-worker-exits-when-idle.ts', import.meta.url);
    // The worker is ready and gone (after 50 ms) long before the second chunk arrives (after 400 ms).
    await expect(verifyExport(Readable.from(slowly(400)), { threads: 1, batchBytes: 50_000, workerModule })).rejects.toThrow(
      "the verifier's worker failed: it exited with code 4",
    );
  });
});
