/**
 * Adds or replaces one upstream MCP server. Header values are write-only: typed here, sent once,
 * sealed by the API and never shown again (the list shows their names). A replacement sends the
 * whole server, so the existing header names come back as rows whose values must be typed again;
 * a removed row drops that header.
 */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { ApiErrorNotice, Button, Field, SelectField } from '../../components/index.ts';
import type { McpServer } from './types.ts';

interface HeaderRow {
  id: number;
  name: string;
  value: string;
}

let nextRow = 1;
const row = (name = ''): HeaderRow => ({ id: nextRow++, name, value: '' });

export function ServerForm({ org, ws, existing, onDone }: { org: string; ws: string; existing: McpServer | null; onDone: () => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [url, setUrl] = useState(existing?.url ?? '');
  const [rows, setRows] = useState<HeaderRow[]>(() => (existing?.headerNames ?? []).map((n) => row(n)));
  const [policy, setPolicy] = useState<'enforce' | 'monitor'>(existing?.resultPolicy ?? 'enforce');
  const [resources, setResources] = useState(existing?.resources ?? false);
  const [enabled, setEnabled] = useState(existing?.enabled ?? true);
  const save = useAction(
    () =>
      unwrap(
        api.PUT('/v1/orgs/{org}/workspaces/{ws}/mcp/servers/{server}', {
          params: { path: { org, ws, server: name.trim() } },
          body: { url: url.trim(), headers: Object.fromEntries(rows.map((r) => [r.name.trim(), r.value])), resultPolicy: policy, resources, enabled },
        }),
      ),
    [['mcp', org, ws]],
    () => {
      // The values leave the page's state as soon as the API has them.
      setRows([]);
      onDone();
    },
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(undefined);
  };
  const update = (id: number, patch: Partial<HeaderRow>) => setRows((all) => all.map((r) => (r.id === id ? { ...r, ...patch } : r)));
  return (
    <form className="form" onSubmit={submit} aria-label={existing ? `Replace ${existing.name}` : 'Add an MCP server'}>
      <Field label="Server name" required readOnly={existing !== null} pattern="[a-z0-9](?:[a-z0-9]|-(?!-)){0,31}" hint="Lowercase letters, digits and single hyphens; clients see its tools as name__tool." value={name} onChange={(e) => setName(e.target.value)} />
      <Field label="URL" required hint="Streamable HTTP, on the operator's allowlist; no credentials in the URL (put them in headers)." value={url} onChange={(e) => setUrl(e.target.value)} />
      <fieldset className="header-rows">
        <legend>Request headers</legend>
        <p className="field-hint">Values are write-only: sealed with the organisation's data key and never shown again.{existing && existing.headerNames.length ? ' Type them again to keep them; remove a row to drop a header.' : ''}</p>
        {rows.map((r, i) => (
          <div className="header-row" key={r.id}>
            <Field label={`Header ${i + 1} name`} required autoComplete="off" value={r.name} onChange={(e) => update(r.id, { name: e.target.value })} />
            <Field label={`Header ${i + 1} value`} type="password" required autoComplete="off" value={r.value} onChange={(e) => update(r.id, { value: e.target.value })} />
            <Button variant="quiet" onClick={() => setRows((all) => all.filter((x) => x.id !== r.id))} aria-label={`Remove header ${i + 1}`}>
              Remove
            </Button>
          </div>
        ))}
        <Button onClick={() => setRows((all) => [...all, row()])}>Add header</Button>
      </fieldset>
      <SelectField
        label="Result policy"
        value={policy}
        onChange={(e) => setPolicy(e.target.value as 'enforce' | 'monitor')}
        options={[
          { value: 'enforce', label: 'enforce: a result the input guard blocks is withheld' },
          { value: 'monitor', label: 'monitor: it is passed on and audited' },
        ]}
      />
      <label className="check">
        <input type="checkbox" checked={resources} onChange={(e) => setResources(e.target.checked)} />
        Expose the server's resources
      </label>
      <label className="check">
        <input type="checkbox" checked={enabled} onChange={(e) => setEnabled(e.target.checked)} />
        Enabled
      </label>
      <ApiErrorNotice error={save.error} title="Server not saved" />
      <Button type="submit" variant="primary" busy={save.isPending}>
        {existing ? 'Replace server' : 'Save server'}
      </Button>
    </form>
  );
}
