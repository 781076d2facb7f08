/**
 * The usage report (GW-4): an org's calls in one UTC month, per key, per workspace and in total,
 * read from the roll-up rows the meter writes (src/gateway/metering.ts).
 */
import type { Db } from '../store/db-types.ts';
import { monthBounds } from './month.ts';

/** Totals of a set of calls. */
export interface UsageTotals {
  requests: number;
  inputTokens: number;
  outputTokens: number;
  costMicroUsd: number;
  /** Calls whose token counts were (partly) estimated. */
  estimatedRequests: number;
  /** Calls that ended with an error (status >= 400 or a stream broken off). */
  failedRequests: number;
}

export interface UsageReport {
  /** `YYYY-MM`, UTC. */
  month: string;
  from: string;
  to: string;
  org: UsageTotals;
  workspaces: (UsageTotals & { workspaceId: string })[];
  keys: (UsageTotals & { keyId: string; workspaceId: string; name: string | null })[];
}

const zero = (): UsageTotals => ({ requests: 0, inputTokens: 0, outputTokens: 0, costMicroUsd: 0, estimatedRequests: 0, failedRequests: 0 });

function add(into: UsageTotals, from: UsageTotals): void {
  into.requests += from.requests;
  into.inputTokens += from.inputTokens;
  into.outputTokens += from.outputTokens;
  into.costMicroUsd += from.costMicroUsd;
  into.estimatedRequests += from.estimatedRequests;
  into.failedRequests += from.failedRequests;
}


/**
 * An org's usage in one month, per key, per workspace and in total.
 * @example const report = await readUsageReport(db, orgId, '2026-11')
 */
export async function readUsageReport(db: Db, orgId: string, month: string): Promise<UsageReport> {
  const { from, to } = monthBounds(month);
  const { rows } = await db.withTenant(orgId, (tx) =>
    tx.query<{
      workspace_id: string;
      api_key_id: string;
      name: string | null;
      requests: number;
      input_tokens: string;
      output_tokens: string;
      cost: string;
      estimated: number;
      failed: number;
    }>(
      `select u.workspace_id, u.api_key_id, k.name, u.requests, u.input_tokens, u.output_tokens, u.cost, u.estimated, u.failed
         from (select workspace_id, api_key_id, sum(requests)::int as requests,
                      sum(input_tokens)::bigint::text as input_tokens, sum(output_tokens)::bigint::text as output_tokens,
                      coalesce(sum(cost_micro_usd), 0)::bigint::text as cost,
                      coalesce(sum(requests) filter (where estimated), 0)::int as estimated,
                      coalesce(sum(requests) filter (where status >= 400 or error_code is not null), 0)::int as failed
                 from usage_records
                where created_at >= $1 and created_at < $2
                group by workspace_id, api_key_id) u
         left join api_keys k on k.id = u.api_key_id
        order by u.workspace_id, u.api_key_id`,
      [from.toISOString(), to.toISOString()],
    ),
  );
  const org = zero();
  const workspaces = new Map<string, UsageTotals & { workspaceId: string }>();
  const keys: UsageReport['keys'] = [];
  for (const r of rows) {
    const totals: UsageTotals = {
      requests: r.requests,
      inputTokens: Number(r.input_tokens),
      outputTokens: Number(r.output_tokens),
      costMicroUsd: Number(r.cost),
      estimatedRequests: r.estimated,
      failedRequests: r.failed,
    };
    keys.push({ keyId: r.api_key_id, workspaceId: r.workspace_id, name: r.name, ...totals });
    let ws = workspaces.get(r.workspace_id);
    if (!ws) {
      ws = { workspaceId: r.workspace_id, ...zero() };
      workspaces.set(r.workspace_id, ws);
    }
    add(ws, totals);
    add(org, totals);
  }
  return { month, from: from.toISOString(), to: to.toISOString(), org, workspaces: [...workspaces.values()], keys };
}
