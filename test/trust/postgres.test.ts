/**
 * The trust report on two nodes sharing PostgreSQL and Redis (OPS-4): the database checks ask the
 * real catalog as the application role, the rate-limit check counts in Redis, both nodes' reports
 * verify with the shared JWKS; a tenant table without forced RLS fails it on both.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTwoNodes, twoNodeSkipReason as skip, type TwoNodes } from '../support/two-nodes.ts';
import { TRUST, verifyTrustReport } from '../../src/trust/index.ts';

describe.skipIf(skip !== undefined)(`trust report on PostgreSQL + Redis${skip ? ` (${skip})` : ''}`, () => {
  let nodes: TwoNodes;
  beforeAll(async () => {
    nodes = await startTwoNodes();
  }, 120_000);
  afterAll(async () => nodes?.close());

  it('the database and counter-store checks pass on PostgreSQL + Redis, and a tenant table without forced RLS fails TEN-3 on both nodes', async () => {
    const [a, b] = await Promise.all([nodes.a.use(TRUST).generate(), nodes.b.use(TRUST).generate()]);
    const state = (r: typeof a, id: string) => r.report.controls.find((c) => c.control === id);
    for (const r of [a, b]) {
      for (const id of ['TEN-2', 'TEN-3', 'ABUSE-1', 'DATA-2', 'AUDIT-2', 'AUTH-3', 'OPS-4']) expect(state(r, id)?.state, `${id} ${JSON.stringify(state(r, id))}`).toBe('active');
      expect(JSON.stringify(state(r, 'ABUSE-1'))).toContain('redis store counted two hits');
    }
    const jwks = (await nodes.a.app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: never[] }>();
    expect(verifyTrustReport(a, jwks)).toBe(true);
    expect(verifyTrustReport(b, jwks)).toBe(true);
    await nodes.a.db.asOwner((tx) => tx.query('create table trust_pg_leak (tenant_id uuid not null)'));
    try {
      for (const node of [nodes.a, nodes.b]) {
        const { report } = await node.use(TRUST).generate();
        const ten3 = report.controls.find((c) => c.control === 'TEN-3');
        expect(ten3?.state).toBe('failed');
        expect(JSON.stringify(ten3)).toContain('trust_pg_leak');
      }
    } finally {
      await nodes.a.db.asOwner((tx) => tx.query('drop table trust_pg_leak'));
    }
  }, 120_000);
});
