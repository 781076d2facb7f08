/**
 * Concurrent audit appends from two nodes sharing PostgreSQL and Redis (AUDIT-2): no gap, no
 * duplicate, and every checkpoint of the resulting log verifies offline.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyExport } from '../../src/audit/verify.ts';
import type { Node } from '../../src/cli/runtime.ts';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';

(skip ? describe.skip : describe)(`audit appends from two nodes on PostgreSQL + Redis${skip ? `: ${skip}` : ''}`, () => {
  let nodes: TwoNodes | undefined;
  let a: Node;
  let b: Node;

  beforeAll(async () => {
    nodes = await startTwoNodes({ env: { GATEHOUSE_AUDIT_CHECKPOINT_EVERY: '16' } });
    ({ a, b } = nodes);
  });

  afterAll(async () => {
    await nodes?.close();
  });

  it('8 writers on two nodes append 200 events: sequence 0..199 exactly once, and the export verifies', async () => {
    const log = randomUUID();
    await a.db.query("insert into tenants (id, kind) values ($1, 'org')", [log]);
    const writers = Array.from({ length: 8 }, (_, w) => (w % 2 === 0 ? a : b));
    const seqs = (
      await Promise.all(
        writers.map(async (node, w) => {
          const mine: number[] = [];
          for (let i = 0; i < 25; i += 1) mine.push(await node.audit.record({ tenantId: log, action: 'org.updated', data: { writer: w, i } }));
          return mine;
        }),
      )
    ).flat();
    expect([...seqs].sort((x, y) => x - y)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    const stored = await a.db.asOwner((tx) => tx.query<{ n: number; max: number }>('select count(*)::int as n, max(seq)::int as max from audit_events where tenant_id = $1', [log]));
    expect(stored.rows[0]).toEqual({ n: 200, max: 199 });
    const lines: string[] = [];
    for await (const line of b.audit.exportLines(log)) lines.push(line.trimEnd());
    const jwks = await a.signingKeys.jwks('audit-checkpoint');
    const report = await verifyExport(
      (async function* () {
        yield* lines;
      })(),
      { trustedKids: jwks.keys.map((k) => k.kid) },
    );
    expect(report.problem).toBeUndefined();
    expect(report.ok).toBe(true);
    expect(report.checkpoints).toBeGreaterThanOrEqual(12);
  });
});
