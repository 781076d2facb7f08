/**
 * The workspace's own providers (bring your own key). The vendor key is write-only: the API never
 * returns it and the console never holds it after the form is sent; a provider shows "Key set"
 * and a Rotate action that sends a new key. Listing and changing them needs providers.manage: a
 * member whose effective role here lacks it sees a note naming the role needed instead.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { useWorkspaceRole } from '../../api/scope.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Dialog, Field, RoleNote, Section, SelectField, Table } from '../../components/index.ts';

type Kind = 'openai' | 'anthropic' | 'azure-openai' | 'openai-compatible';
interface Provider {
  name: string;
  kind: Kind;
  baseUrl: string;
  models: string[];
  keySet: true;
  updatedAt: string;
}

function ProviderForm({ org, ws, existing, onDone }: { org: string; ws: string; existing: Provider | null; onDone: () => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [kind, setKind] = useState<Kind>(existing?.kind ?? 'openai');
  const [baseUrl, setBaseUrl] = useState(existing?.baseUrl ?? '');
  const [models, setModels] = useState(existing?.models.join(', ') ?? '');
  const [apiKey, setApiKey] = useState('');
  const save = useAction(
    () =>
      unwrap(
        api.PUT('/v1/orgs/{org}/workspaces/{ws}/providers/{provider}', {
          params: { path: { org, ws, provider: name.trim() } },
          body: { kind, baseUrl: baseUrl.trim(), apiKey, models: models.split(',').map((m) => m.trim()).filter(Boolean) },
        }),
      ),
    [['providers', org, ws]],
    () => {
      setApiKey('');
      onDone();
    },
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(undefined);
  };
  return (
    <form className="form" onSubmit={submit} aria-label={existing ? `Rotate the key of ${existing.name}` : 'Add a provider'}>
      <Field label="Provider name" required readOnly={existing !== null} pattern="[a-z0-9][a-z0-9-]*" value={name} onChange={(e) => setName(e.target.value)} />
      <SelectField label="Kind" value={kind} onChange={(e) => setKind(e.target.value as Kind)} options={['openai', 'anthropic', 'azure-openai', 'openai-compatible'].map((k) => ({ value: k, label: k }))} />
      <Field label="Base URL" type="url" required value={baseUrl} onChange={(e) => setBaseUrl(e.target.value)} />
      <Field label="Models (comma-separated)" required value={models} onChange={(e) => setModels(e.target.value)} />
      <Field
        label={existing ? 'New vendor API key' : 'Vendor API key'}
        type="password"
        autoComplete="off"
        required
        hint="Write-only: sealed with the organisation's data key, never shown again."
        value={apiKey}
        onChange={(e) => setApiKey(e.target.value)}
      />
      <ApiErrorNotice error={save.error} title="Provider not saved" />
      <Button type="submit" variant="primary" busy={save.isPending}>
        {existing ? 'Rotate key' : 'Save provider'}
      </Button>
    </form>
  );
}

export function Providers({ org, ws }: { org: string; ws: string }) {
  const role = useWorkspaceRole(org, ws);
  if (!allows(role, 'providers.manage')) {
    return (
      <Section title="Provider credentials">
        <RoleNote role={role} permission="providers.manage" action="Seeing or changing this workspace's own providers" />
      </Section>
    );
  }
  return <ProviderList org={org} ws={ws} />;
}

function ProviderList({ org, ws }: { org: string; ws: string }) {
  const key = ['providers', org, ws];
  const list = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/providers', { params: { path: { org, ws } } }))).providers as Provider[] });
  const [editing, setEditing] = useState<Provider | 'new' | null>(null);
  const [deleting, setDeleting] = useState<string | null>(null);
  const remove = useAction((provider: string) => unwrap(api.DELETE('/v1/orgs/{org}/workspaces/{ws}/providers/{provider}', { params: { path: { org, ws, provider } } })), [key], () => setDeleting(null));
  return (
    <Section title="Provider credentials" actions={<Button onClick={() => setEditing('new')}>Add provider</Button>}>
      <ApiErrorNotice error={list.error} />
      <Table
        caption="This workspace's own providers"
        rows={list.data ?? []}
        rowKey={(p) => p.name}
        empty="None: the platform's providers serve this workspace."
        columns={[
          { header: 'Name', cell: (p) => p.name },
          { header: 'Kind', cell: (p) => p.kind },
          { header: 'Base URL', cell: (p) => <code className="mono">{p.baseUrl}</code> },
          { header: 'Models', cell: (p) => p.models.join(', ') },
          { header: 'Key', cell: () => <span className="badge badge-ok">Key set</span> },
          {
            header: 'Actions',
            cell: (p) => (
              <div className="row">
                <Button onClick={() => setEditing(p)} aria-label={`Rotate key of ${p.name}`}>
                  Rotate key
                </Button>
                <Button variant="danger" onClick={() => setDeleting(p.name)} aria-label={`Delete ${p.name}`}>
                  Delete
                </Button>
              </div>
            ),
          },
        ]}
      />
      <Dialog open={editing !== null} title={editing === 'new' ? 'Add a provider' : `Rotate the key of ${editing?.name ?? ''}`} onClose={() => setEditing(null)} actions={<Button onClick={() => setEditing(null)}>Close</Button>}>
        {editing ? <ProviderForm org={org} ws={ws} existing={editing === 'new' ? null : editing} onDone={() => setEditing(null)} /> : null}
      </Dialog>
      <ConfirmDialog open={deleting !== null} title={`Delete ${deleting ?? ''}?`} confirmLabel="Delete provider" danger busy={remove.isPending} error={remove.error} onCancel={() => setDeleting(null)} onConfirm={() => deleting && remove.mutate(deleting)}>
        <p>Its sealed key is deleted; calls go to the platform's providers again.</p>
      </ConfirmDialog>
    </Section>
  );
}
