/**
 * Tool and prompt review: what the workspace's servers list waits as pending (hidden from clients
 * and refused) until approved. Each item shows what an approval approves: its description and
 * its input schema (a prompt: its arguments) as formatted text, never as HTML. Approved and
 * denied items are listed too; an admin can change a decision.
 */
import { useQuery } from '@tanstack/react-query';
import type { ReactNode } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { ApiErrorNotice, Button, Section, Table, type Column } from '../../components/index.ts';
import type { McpItem } from './types.ts';

type Kind = 'tool' | 'prompt';
type Decision = 'approved' | 'denied';

function json(value: unknown): string {
  return JSON.stringify(value ?? null, null, 2);
}

/** The definition as the reviewer reads it: the schema (or arguments), then anything else it holds. */
function Definition({ kind, item }: { kind: Kind; item: McpItem }) {
  const { inputSchema, arguments: args, ...others } = item.definition;
  // The description has its own column.
  const rest = Object.fromEntries(Object.entries(others).filter(([k]) => k !== 'description'));
  const main = kind === 'tool' ? inputSchema : (args ?? []);
  return (
    <>
      <pre className="schema" aria-label={`${kind === 'tool' ? 'Input schema' : 'Arguments'} of ${item.qualifiedName}`}>{json(main)}</pre>
      {Object.keys(rest).length ? (
        <pre className="schema" aria-label={`Other fields of ${item.qualifiedName}`}>{json(rest)}</pre>
      ) : null}
    </>
  );
}

function useItems(org: string, ws: string, kind: Kind) {
  return useQuery({
    queryKey: ['mcp', org, ws, `${kind}s`],
    queryFn: async () =>
      kind === 'tool'
        ? (await unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/mcp/tools', { params: { path: { org, ws } } }))).tools
        : (await unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/mcp/prompts', { params: { path: { org, ws } } }))).prompts,
  });
}

function useReview(org: string, ws: string, kind: Kind) {
  return useAction(
    ({ item, status }: { item: McpItem; status: Decision }) => {
      const path = { org, ws, server: item.server };
      return unwrap(
        kind === 'tool'
          ? api.PUT('/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}/tools/{tool}', { params: { path: { ...path, tool: item.name } }, body: { status } })
          : api.PUT('/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}/prompts/{prompt}', { params: { path: { ...path, prompt: item.name } }, body: { status } }),
      );
    },
    [['mcp', org, ws]],
  );
}

function columns(kind: Kind, actions: ((item: McpItem) => ReactNode) | null): Column<McpItem>[] {
  return [
    { header: 'Name', cell: (i) => <code className="mono">{i.qualifiedName}</code> },
    { header: 'Server', cell: (i) => i.server },
    { header: 'Description', cell: (i) => (i.description ?? '—') },
    { header: kind === 'tool' ? 'Input schema' : 'Arguments', cell: (i) => <Definition kind={kind} item={i} /> },
    { header: 'Listed', cell: (i) => (i.listed ? 'Yes' : <span className="badge badge-muted">No longer listed</span>) },
    ...(actions ? [{ header: 'Actions', cell: actions }] : []),
  ];
}

function ReviewLists({ org, ws, kind, canManage }: { org: string; ws: string; kind: Kind; canManage: boolean }) {
  const items = useItems(org, ws, kind);
  const review = useReview(org, ws, kind);
  const plural = `${kind}s`;
  const decide = (item: McpItem, status: Decision, label: string) => (
    <Button variant={status === 'denied' ? 'danger' : 'primary'} busy={review.isPending && review.variables.item === item && review.variables.status === status} onClick={() => review.mutate({ item, status })} aria-label={`${label} ${item.qualifiedName}`}>
      {label}
    </Button>
  );
  const all = items.data ?? [];
  const of = (status: McpItem['status']) => all.filter((i) => i.status === status);
  return (
    <>
      <ApiErrorNotice error={items.error} />
      <ApiErrorNotice error={review.error} title="Review not saved" />
      {items.data ? (
        <>
          <Table
            caption={`Pending ${plural}: waiting for review`}
            rows={of('pending')}
            rowKey={(i) => i.qualifiedName}
            empty={`No ${kind} waits for review.`}
            columns={columns(kind, canManage ? (i) => <div className="row">{decide(i, 'approved', 'Approve')}{decide(i, 'denied', 'Deny')}</div> : null)}
          />
          <Table caption={`Approved ${plural}: listed to clients`} rows={of('approved')} rowKey={(i) => i.qualifiedName} empty={`No approved ${kind}.`} columns={columns(kind, canManage ? (i) => decide(i, 'denied', 'Deny') : null)} />
          <Table caption={`Denied ${plural}`} rows={of('denied')} rowKey={(i) => i.qualifiedName} empty={`No denied ${kind}.`} columns={columns(kind, canManage ? (i) => decide(i, 'approved', 'Approve') : null)} />
        </>
      ) : null}
    </>
  );
}

export function Review({ org, ws, canManage }: { org: string; ws: string; canManage: boolean }) {
  return (
    <>
      <Section title="Tools">
        <ReviewLists org={org} ws={ws} kind="tool" canManage={canManage} />
      </Section>
      <Section title="Prompts">
        <ReviewLists org={org} ws={ws} kind="prompt" canManage={canManage} />
      </Section>
    </>
  );
}
