/**
 * The trust report's live check of central budgets (ABUSE-2): how many budgets are configured and
 * for how many workspaces (from the database), and whether the counter store answers now (a read
 * of a counter of its own). No budget configured: `off`. A store that does not answer: `failed`.
 * A store outage that would let calls through uncounted (budgets.onStoreError=open): `misconfigured`.
 */
import { randomUUID } from 'node:crypto';
import type { TrustCheck } from '../trust/index.ts';

export const budgetsTrustCheck: TrustCheck = {
  control: 'ABUSE-2',
  name: 'budgets-configured-and-counted',
  run: async (ctx) => {
    const { rows } = await ctx.db.asOwner((tx) =>
      tx.query<{ budgets: number; workspaces: number; orgs: number }>('select count(*)::int as budgets, count(distinct workspace_id)::int as workspaces, count(distinct tenant_id) filter (where workspace_id is null)::int as orgs from budgets'),
    );
    const { budgets = 0, workspaces = 0, orgs = 0 } = rows[0] ?? {};
    const onError = ctx.config.budgets.onStoreError;
    const evidence = [`${budgets} budget(s) configured: ${orgs} org-wide, on ${workspaces} workspace(s) (per workspace or per API key)`, `on a counter-store failure: ${onError === 'closed' ? 'closed (503 + Retry-After)' : 'open (calls pass uncounted)'}`];
    try {
      await ctx.kv.readBudget(`budget:trust-check:${randomUUID()}`);
      evidence.push(`the ${ctx.kv.kind} counter store answered a counter read`);
    } catch {
      return { state: 'failed', evidence: [...evidence, `the ${ctx.kv.kind} counter store did not answer`], why: 'the budget counter store is unreachable' };
    }
    if (budgets === 0) return { state: 'off', evidence, why: 'no budget is configured' };
    if (onError === 'open') return { state: 'misconfigured', evidence, why: 'a counter-store outage lets calls through uncounted (budgets.onStoreError=open)' };
    return { state: 'active', evidence };
  },
};
