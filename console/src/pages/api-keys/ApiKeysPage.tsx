/**
 * API keys of the current workspace: create one (its secret is shown once, with a copy button and
 * a warning), list them with last use, scopes, expiry and limits, revoke one (refused on every
 * node at once). Creating and revoking need apikeys.manage in the workspace: a member whose
 * effective role there lacks it sees the keys and a note naming the role needed.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { useEffectiveScope, useWorkspaceRole } from '../../api/scope.ts';
import { ApiErrorNotice, Button, ConfirmDialog, CopyButton, Dialog, Field, Notice, Page, RequireSession, RoleNote, ScopePicker, Section, Table } from '../../components/index.ts';
import '../../styles/pages.css';

const SCOPES = ['ai:chat', 'ai:embeddings', 'ai:models', 'mcp:tools', 'budgets:consume', 'tokens:mint'] as const;
type Scope = (typeof SCOPES)[number];
const PAGE = 50;

function when(iso: string | null, never = 'Never'): string {
  return iso ? new Date(iso).toLocaleString('en') : never;
}

function CreateKey({ org, ws, onCreated }: { org: string; ws: string; onCreated: (key: string) => void }) {
  const [name, setName] = useState('');
  const [scopes, setScopes] = useState<Scope[]>(['ai:chat', 'ai:embeddings', 'ai:models']);
  const [expires, setExpires] = useState('');
  const [monthly, setMonthly] = useState('');
  const [perMinute, setPerMinute] = useState('');
  const create = useAction(
    () =>
      unwrap(
        api.POST('/v1/orgs/{org}/workspaces/{ws}/api-keys', {
          params: { path: { org, ws } },
          body: {
            name: name.trim(),
            scopes,
            ...(expires ? { expiresAt: new Date(`${expires}T23:59:59Z`).toISOString() } : {}),
            ...(monthly ? { monthlyLimit: Number(monthly) } : {}),
            ...(perMinute ? { rateLimitPerMinute: Number(perMinute) } : {}),
          },
        }),
      ),
    [['keys', org, ws]],
    (result) => {
      setName('');
      onCreated(result.key);
    },
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    create.mutate(undefined);
  };
  return (
    <form className="form" onSubmit={submit} aria-label="Create an API key">
      <Field label="Key name" name="keyName" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      <fieldset className="checks">
        <legend>Scopes</legend>
        {SCOPES.map((s) => (
          <label key={s} className="check">
            <input type="checkbox" checked={scopes.includes(s)} onChange={(e) => setScopes(e.target.checked ? [...scopes, s] : scopes.filter((x) => x !== s))} />
            {s}
          </label>
        ))}
      </fieldset>
      <Field label="Expires on (optional)" type="date" value={expires} onChange={(e) => setExpires(e.target.value)} />
      <Field label="Monthly request limit (optional)" type="number" min={1} inputMode="numeric" value={monthly} onChange={(e) => setMonthly(e.target.value)} />
      <Field label="Requests per minute (optional)" type="number" min={1} inputMode="numeric" value={perMinute} onChange={(e) => setPerMinute(e.target.value)} />
      <ApiErrorNotice error={create.error} title="Key not created" />
      <Button type="submit" variant="primary" busy={create.isPending}>
        Create key
      </Button>
    </form>
  );
}

function KeyList({ org, ws, manage }: { org: string; ws: string; manage: boolean }) {
  const keys = useQuery({ queryKey: ['keys', org, ws], queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/api-keys', { params: { path: { org, ws } } }))).apiKeys });
  const [revoking, setRevoking] = useState<{ id: string; name: string } | null>(null);
  const [page, setPage] = useState(0);
  const revoke = useAction((key: string) => unwrap(api.DELETE('/v1/orgs/{org}/workspaces/{ws}/api-keys/{key}', { params: { path: { org, ws, key } } })), [['keys', org, ws]], () => setRevoking(null));
  const rows = keys.data ?? [];
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  return (
    <>
      <ApiErrorNotice error={keys.error} />
      <Table
        caption="API keys of this workspace"
        rows={rows.slice(page * PAGE, page * PAGE + PAGE)}
        rowKey={(k) => k.id}
        empty="No API key yet."
        pagination={{
          label: `Page ${page + 1} of ${pages}`,
          onPrevious: page > 0 ? () => setPage(page - 1) : undefined,
          onNext: page + 1 < pages ? () => setPage(page + 1) : undefined,
        }}
        columns={[
          { header: 'Name', cell: (k) => k.name },
          { header: 'Id', cell: (k) => <code className="mono">{k.id}</code> },
          { header: 'Scopes', cell: (k) => k.scopes.join(', ') },
          { header: 'Last used', cell: (k) => when(k.lastUsedAt) },
          { header: 'Expires', cell: (k) => when(k.expiresAt) },
          { header: 'Limits', cell: (k) => [k.monthlyLimit ? `${k.monthlyLimit}/month` : '', k.rateLimitPerMinute ? `${k.rateLimitPerMinute}/min` : ''].filter(Boolean).join(', ') || 'None' },
          { header: 'Status', cell: (k) => (k.revokedAt ? <span className="badge badge-bad">Revoked</span> : <span className="badge badge-ok">Active</span>) },
          {
            header: 'Actions',
            cell: (k) =>
              k.revokedAt || !manage ? null : (
                <Button variant="danger" onClick={() => setRevoking(k)} aria-label={`Revoke ${k.name}`}>
                  Revoke
                </Button>
              ),
          },
        ]}
      />
      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke ${revoking?.name ?? 'this key'}?`}
        confirmLabel="Revoke key"
        danger
        busy={revoke.isPending}
        error={revoke.error}
        onCancel={() => setRevoking(null)}
        onConfirm={() => revoking && revoke.mutate(revoking.id)}
      >
        <p>Every node refuses the key at once; applications using it stop working. This cannot be undone.</p>
      </ConfirmDialog>
    </>
  );
}

export default function ApiKeysPage() {
  const scope = useEffectiveScope();
  const role = useWorkspaceRole(scope.org, scope.ws);
  const manage = allows(role, 'apikeys.manage');
  const [secret, setSecret] = useState<string | null>(null);
  return (
    <RequireSession>
      {() => (
        <Page title="API keys" intro="Keys let your applications call the AI gateway. A key's secret is shown once, when it is created.">
          <ScopePicker workspace />
          {scope.org && scope.ws ? (
            <>
              <Section title="Keys">
                <KeyList org={scope.org} ws={scope.ws} manage={manage} />
              </Section>
              <Section title="New key">
                {manage ? <CreateKey org={scope.org} ws={scope.ws} onCreated={setSecret} /> : <RoleNote role={role} permission="apikeys.manage" action="Creating or revoking a key" />}
              </Section>
            </>
          ) : null}
          <Dialog
            open={secret !== null}
            title="Your new API key"
            onClose={() => setSecret(null)}
            actions={
              <Button variant="primary" onClick={() => setSecret(null)}>
                I have saved the key
              </Button>
            }
          >
            <Notice tone="warning" title="Copy it now: it is shown only once">
              <p>Gatehouse stores only a hash of the key. If you lose it, revoke it and create another.</p>
            </Notice>
            <p className="secret" data-testid="new-api-key">
              {secret}
            </p>
            <CopyButton value={secret ?? ''} label="Copy key" />
          </Dialog>
        </Page>
      )}
    </RequireSession>
  );
}
