/**
 * The mail queue on two nodes sharing PostgreSQL (AUTH-2): both senders claim from one table, and
 * no message is delivered twice. Attack/failure tried: two senders racing for the same due rows
 * (every message queued on both nodes at once, both senders woken and flushed together, each
 * delivery held 30 ms so claims overlap); a claim that did not lock and lease its rows would hand
 * the same row to both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoNodes, twoNodeSkipReason, type TwoNodes } from '../support/two-nodes.ts';
import { eventually } from '../support/smtp-sink.ts';

describe.skipIf(twoNodeSkipReason !== undefined)('mail queue on two nodes (PostgreSQL)', () => {
  let nodes: TwoNodes;
  beforeAll(async () => {
    nodes = await startTwoNodes({ deliverMailAfterInject: false, sendDelayMs: 30, overrides: { 'mail.pollMs': 100 } });
  }, 240_000);
  afterAll(async () => nodes?.close());

  it('every message queued on either node is delivered exactly once', async () => {
    const { a, b, mail } = nodes;
    const COUNT = 80;
    const subjects = Array.from({ length: COUNT }, (_, i) => `Message ${i}`);
    // All queued at once, half on each node; both senders are also flushed at the same time, repeatedly.
    const flushes = Array.from({ length: 10 }, () => [a.identity.mailer.flush(), b.identity.mailer.flush()]).flat();
    await Promise.all([
      ...subjects.map((subject, i) => (i % 2 ? a : b).identity.mailer.send({ to: `user${i}@example.com`, kind: 'notice', subject, text: `body ${i}` })),
      ...flushes,
    ]);
    expect(await eventually(async () => (await a.identity.mailer.counts()).sent === COUNT, 600, 100)).toBe(true);
    // Settle: both senders finish whatever they hold, so a late duplicate would be seen.
    await Promise.all([a.identity.mailer.flush(), b.identity.mailer.flush()]);
    const delivered = mail.map((m) => m.subject).sort();
    expect(delivered).toHaveLength(COUNT);
    expect(new Set(delivered).size).toBe(COUNT);
    expect(await b.identity.mailer.counts()).toMatchObject({ pending: 0, failed: 0, sent: COUNT });
  }, 240_000);
});
