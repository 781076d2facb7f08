/**
 * Orgs and workspaces: the user's organisations with their role, create one, switch the console
 * to one; the current org's workspaces (create, switch), settings, members, invitations and
 * ownership.
 */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { setScope, setWorkspace, useEffectiveScope, useOrgs, useWorkspaces } from '../../api/scope.ts';
import { ApiErrorNotice, Button, Field, Page, RequireSession, RoleNote, Section, Table } from '../../components/index.ts';
import { MembersSection } from './MembersSection.tsx';
import { SettingsSection } from './SettingsSection.tsx';
import { SsoSection } from './SsoSection.tsx';
import '../../styles/pages.css';

function CreateForm({ label, onCreate, busy, error }: { label: string; onCreate: (name: string) => void; busy: boolean; error: unknown }) {
  const [name, setName] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onCreate(name.trim());
    setName('');
  };
  return (
    <form className="form" onSubmit={submit} aria-label={label}>
      <Field label={`${label}: name`} name="name" required maxLength={100} value={name} onChange={(e) => setName(e.target.value)} />
      <ApiErrorNotice error={error} />
      <Button type="submit" variant="primary" busy={busy}>
        {label}
      </Button>
    </form>
  );
}

function OrgList() {
  const orgs = useOrgs();
  const scope = useEffectiveScope();
  const create = useAction((name: string) => unwrap(api.POST('/v1/orgs', { body: { name } })), [['orgs']], (org) => setScope(org.id));
  return (
    <Section title="Your organisations">
      <ApiErrorNotice error={orgs.error} />
      <Table
        caption="Organisations you belong to"
        rows={orgs.data ?? []}
        rowKey={(o) => o.id}
        empty="You are not in an organisation yet."
        columns={[
          { header: 'Name', cell: (o) => o.name },
          { header: 'Your role', cell: (o) => o.role },
          { header: 'Requires a second factor', cell: (o) => (o.requireMfa ? 'Yes' : 'No') },
          {
            header: 'Current',
            cell: (o) =>
              o.id === scope.org ? (
                <span className="badge badge-ok">Current</span>
              ) : (
                <Button onClick={() => setScope(o.id)} aria-label={`Switch to ${o.name}`}>
                  Switch
                </Button>
              ),
          },
        ]}
      />
      <h3>New organisation</h3>
      <CreateForm label="Create organisation" onCreate={(name) => create.mutate(name)} busy={create.isPending} error={create.error} />
    </Section>
  );
}

function Workspaces({ org, role }: { org: string; role: string }) {
  const workspaces = useWorkspaces(org);
  const scope = useEffectiveScope();
  const create = useAction(
    (name: string) => unwrap(api.POST('/v1/orgs/{org}/workspaces', { params: { path: { org } }, body: { name } })),
    [['orgs', org, 'workspaces']],
    (ws) => setWorkspace(ws.id),
  );
  return (
    <Section title="Workspaces">
      <ApiErrorNotice error={workspaces.error} />
      <Table
        caption="Workspaces of this organisation"
        rows={workspaces.data ?? []}
        rowKey={(w) => w.id}
        empty="No workspace yet."
        columns={[
          { header: 'Name', cell: (w) => w.name },
          { header: 'Id', cell: (w) => <code className="mono">{w.id}</code> },
          {
            header: 'Current',
            cell: (w) =>
              w.id === scope.ws ? (
                <span className="badge badge-ok">Current</span>
              ) : (
                <Button onClick={() => setWorkspace(w.id)} aria-label={`Switch to workspace ${w.name}`}>
                  Switch
                </Button>
              ),
          },
        ]}
      />
      <h3>New workspace</h3>
      {allows(role, 'workspaces.create') ? (
        <CreateForm label="Create workspace" onCreate={(name) => create.mutate(name)} busy={create.isPending} error={create.error} />
      ) : (
        <RoleNote role={role} permission="workspaces.create" action="Creating a workspace" />
      )}
    </Section>
  );
}

export default function OrgsPage() {
  const scope = useEffectiveScope();
  return (
    <RequireSession>
      {(me) => (
        <Page title="Orgs & workspaces" intro="Create organisations and workspaces, switch between them, manage settings, members, roles, invitations and ownership.">
          <OrgList />
          {scope.org ? (
            <>
              <h2 className="scope-title">
                Organisation: <span>{scope.orgName}</span>
              </h2>
              <Workspaces org={scope.org} role={scope.role} />
              <MembersSection org={scope.org} role={scope.role} myId={me.id} />
              <SettingsSection org={scope.org} role={scope.role} />
              {allows(scope.role, 'sso.manage') ? <SsoSection org={scope.org} /> : null}
            </>
          ) : null}
        </Page>
      )}
    </RequireSession>
  );
}
