/**
 * The trust report's live check of central budgets (ABUSE-2): how many budgets are configured and
 * for how many workspaces (from the database, per tenant: budgets forces row-level security, on the
 * owner too), and whether the counter store answers now (a read
 * of a counter of its own). No budget configured: `off`. A store that does not answer: `failed`.
 * A store outage that would let calls through uncounted (budgets.onStoreError=open): `misconfigured`.
 */
import { randomUUID } from 'node:crypto';
import { forTenants, type TrustCheck } from '../trust/index.ts';

export const budgetsTrustCheck: TrustCheck = {
  control: 'ABUSE-2',
  name: 'budgets-configured-and-counted',
  run: async (ctx) => {
    let budgets = 0;
    let workspaces = 0;
    let orgs = 0;
    const { read, total } = await forTenants(ctx, async (_id, tx) => {
      const { rows } = await tx.query<{ budgets: number; workspaces: number; org: boolean }>(
        'select count(*)::int as budgets, count(distinct workspace_id)::int as workspaces, bool_or(workspace_id is null) as org from budgets',
      );
      budgets += rows[0]?.budgets ?? 0;
      workspaces += rows[0]?.workspaces ?? 0;
      if (rows[0]?.org === true) orgs++;
    });
    const onError = ctx.config.budgets.onStoreError;
    const evidence = [`${budgets} budget(s) configured in ${read} of ${total} tenants read: ${orgs} org-wide, on ${workspaces} workspace(s) (per workspace or per API key)`, `on a counter-store failure: ${onError === 'closed' ? 'closed (503 + Retry-After)' : 'open (calls pass uncounted)'}`];
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
