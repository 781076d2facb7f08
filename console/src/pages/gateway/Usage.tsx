/**
 * The org's AI usage: requests, tokens and cost per month over the last six months (a chart and
 * the same numbers in a table), and the chosen month per workspace and per API key.
 */
import { useQueries } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Section, SelectField, Table } from '../../components/index.ts';
import { TimeChart } from '../../components/TimeChart.tsx';

const MONTHS = 6;

/** The last `count` UTC months, oldest first, as YYYY-MM. */
function lastMonths(count: number): string[] {
  const now = new Date();
  return Array.from({ length: count }, (_, i) => {
    const d = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - (count - 1 - i), 1));
    return d.toISOString().slice(0, 7);
  });
}

const usd = (micro: number) => `$${(micro / 1_000_000).toFixed(4)}`;
const n = (v: number) => v.toLocaleString('en');

export function Usage({ org, workspaces }: { org: string; workspaces: ReadonlyArray<{ id: string; name: string }> }) {
  const months = useMemo(() => lastMonths(MONTHS), []);
  const [month, setMonth] = useState(months[months.length - 1] ?? '');
  const reports = useQueries({
    queries: months.map((m) => ({ queryKey: ['usage', org, m], queryFn: () => unwrap(api.GET('/v1/orgs/{org}/usage', { params: { path: { org }, query: { month: m } } })) })),
  });
  const loaded = reports.every((r) => r.data);
  const times = useMemo(() => months.map((m) => new Date(`${m}-01T00:00:00Z`)), [months]);
  const series = [
    { label: 'Requests', stroke: '#1f4fd1', values: reports.map((r) => r.data?.org.requests ?? 0) },
    { label: 'Tokens (thousands)', stroke: '#1b6e3a', values: reports.map((r) => ((r.data?.org.inputTokens ?? 0) + (r.data?.org.outputTokens ?? 0)) / 1000) },
  ];
  const chosen = reports[months.indexOf(month)]?.data;
  const wsName = (id: string) => workspaces.find((w) => w.id === id)?.name ?? id;
  return (
    <Section title="Usage">
      <ApiErrorNotice error={reports.find((r) => r.error)?.error} />
      {loaded ? (
        <figure className="usage-figure">
          <TimeChart label={`Requests and tokens per month, ${months[0]} to ${months[months.length - 1]}`} times={times} series={series} />
          <figcaption>Requests and tokens (thousands) of the whole organisation per month (UTC).</figcaption>
        </figure>
      ) : (
        <p className="loading" role="status">Loading usage…</p>
      )}
      <Table
        caption="Usage of the organisation per month"
        rows={months.map((m, i) => ({ month: m, u: reports[i]?.data?.org }))}
        rowKey={(r) => r.month}
        columns={[
          { header: 'Month', cell: (r) => r.month },
          { header: 'Requests', className: 'num', cell: (r) => n(r.u?.requests ?? 0) },
          { header: 'Input tokens', className: 'num', cell: (r) => n(r.u?.inputTokens ?? 0) },
          { header: 'Output tokens', className: 'num', cell: (r) => n(r.u?.outputTokens ?? 0) },
          { header: 'Cost', className: 'num', cell: (r) => usd(r.u?.costMicroUsd ?? 0) },
          { header: 'Failed', className: 'num', cell: (r) => n(r.u?.failedRequests ?? 0) },
        ]}
      />
      <SelectField label="Month" value={month} onChange={(e) => setMonth(e.target.value)} options={[...months].reverse().map((m) => ({ value: m, label: m }))} />
      <Table
        caption={`Usage per workspace in ${month}`}
        rows={chosen?.workspaces ?? []}
        rowKey={(w) => w.workspaceId}
        empty="No usage this month."
        columns={[
          { header: 'Workspace', cell: (w) => wsName(w.workspaceId) },
          { header: 'Requests', className: 'num', cell: (w) => n(w.requests) },
          { header: 'Tokens', className: 'num', cell: (w) => n(w.inputTokens + w.outputTokens) },
          { header: 'Cost', className: 'num', cell: (w) => usd(w.costMicroUsd) },
        ]}
      />
      <Table
        caption={`Usage per API key in ${month}`}
        rows={chosen?.keys ?? []}
        rowKey={(k) => k.keyId}
        empty="No usage this month."
        columns={[
          { header: 'Key', cell: (k) => k.name ?? k.keyId },
          { header: 'Workspace', cell: (k) => wsName(k.workspaceId) },
          { header: 'Requests', className: 'num', cell: (k) => n(k.requests) },
          { header: 'Tokens', className: 'num', cell: (k) => n(k.inputTokens + k.outputTokens) },
          { header: 'Cost', className: 'num', cell: (k) => usd(k.costMicroUsd) },
        ]}
      />
    </Section>
  );
}
