/**
 * The workspace's upstream MCP servers: URL, header names (values are write-only), result policy,
 * resources, last sync; add or replace (a form), sync (the counts it answered), delete (asks
 * first). `canManage`: the API answered the list, which needs the same permission as every change.
 */
import type { UseQueryResult } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Dialog, Notice, Section, Table } from '../../components/index.ts';
import { ServerForm } from './ServerForm.tsx';
import type { McpServer, SyncCounts } from './types.ts';

const counts = (c: { added: number; changed: number; unlisted: number }) => `${c.added} added, ${c.changed} changed, ${c.unlisted} unlisted`;

export function Servers({ org, ws, list }: { org: string; ws: string; list: UseQueryResult<McpServer[]> }) {
  const canManage = list.isSuccess;
  const [editing, setEditing] = useState<McpServer | 'new' | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const [synced, setSynced] = useState<{ server: string; result: SyncCounts } | null>(null);
  const remove = useAction((server: string) => unwrap(api.DELETE('/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}', { params: { path: { org, ws, server } } })), [['mcp', org, ws]], () => setDeleting(null));
  const sync = useAction(
    async (server: string) => ({ server, result: await unwrap(api.POST('/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}/sync', { params: { path: { org, ws, server } }, body: {} })) }),
    [['mcp', org, ws]],
    setSynced,
  );
  return (
    <Section title="Servers" actions={canManage ? <Button onClick={() => setEditing('new')}>Add server</Button> : null}>
      <ApiErrorNotice error={list.error} />
      <ApiErrorNotice error={sync.error} title="Sync failed" />
      {synced ? (
        <Notice tone="success" title={`Synced ${synced.server}`}>
          <p>Tools: {counts(synced.result)}.{synced.result.prompts ? ` Prompts: ${counts(synced.result.prompts)}.` : ''} New and changed ones wait for review below.</p>
        </Notice>
      ) : null}
      {list.data ? (
        <Table
          caption="MCP servers of this workspace"
          rows={list.data}
          rowKey={(s) => s.name}
          empty="No MCP server yet."
          columns={[
            { header: 'Name', cell: (s) => s.name },
            { header: 'URL', cell: (s) => <code className="mono server-url">{s.url}</code> },
            { header: 'Headers', cell: (s) => (s.headerNames.length ? s.headerNames.map((h) => <code key={h} className="mono header-name">{h}</code>) : 'None') },
            { header: 'Result policy', cell: (s) => s.resultPolicy },
            { header: 'Resources', cell: (s) => (s.resources ? 'On' : 'Off') },
            { header: 'Status', cell: (s) => (s.enabled ? <span className="badge badge-ok">Enabled</span> : <span className="badge badge-muted">Disabled</span>) },
            { header: 'Last sync', cell: (s) => (s.lastSyncedAt ? new Date(s.lastSyncedAt).toLocaleString('en') : 'Never') },
            ...(canManage
              ? [
                  {
                    header: 'Actions',
                    cell: (s: McpServer) => (
                      <div className="row">
                        <Button onClick={() => sync.mutate(s.name)} busy={sync.isPending && sync.variables === s.name} aria-label={`Sync ${s.name}`}>
                          Sync
                        </Button>
                        <Button onClick={() => setEditing(s)} aria-label={`Replace ${s.name}`}>
                          Replace
                        </Button>
                        <Button variant="danger" onClick={() => setDeleting(s.name)} aria-label={`Delete ${s.name}`}>
                          Delete
                        </Button>
                      </div>
                    ),
                  },
                ]
              : []),
          ]}
        />
      ) : null}
      <Dialog open={editing !== null} title={editing === 'new' ? 'Add an MCP server' : `Replace ${editing?.name ?? ''}`} onClose={() => setEditing(null)} actions={<Button onClick={() => setEditing(null)}>Close</Button>}>
        {editing ? <ServerForm org={org} ws={ws} existing={editing === 'new' ? null : editing} onDone={() => setEditing(null)} /> : null}
      </Dialog>
      <ConfirmDialog open={deleting !== null} title={`Delete ${deleting ?? ''}?`} confirmLabel="Delete server" danger busy={remove.isPending} error={remove.error} onCancel={() => setDeleting(null)} onConfirm={() => deleting && remove.mutate(deleting)}>
        <p>Its sealed headers and the reviews of its tools and prompts are deleted; clients lose its tools at once.</p>
      </ConfirmDialog>
    </Section>
  );
}
