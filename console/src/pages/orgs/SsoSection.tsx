/**
 * Single sign-on of the current org: connections (OIDC or SAML; a client secret is write-only),
 * the email domains that route sign-ins (verified by the platform operator), and whether SSO is
 * required of the members.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { ApiErrorNotice, Button, Field, Section, SelectField, Table } from '../../components/index.ts';

type DefaultRole = 'admin' | 'editor' | 'viewer';

function AddConnection({ org, onAdded }: { org: string; onAdded: () => void }) {
  const [kind, setKind] = useState<'oidc' | 'saml'>('oidc');
  const [name, setName] = useState('');
  const [defaultRole, setDefaultRole] = useState<DefaultRole>('viewer');
  const [issuer, setIssuer] = useState('');
  const [clientId, setClientId] = useState('');
  const [clientSecret, setClientSecret] = useState('');
  const [metadataXml, setMetadataXml] = useState('');
  const add = useAction(
    () =>
      unwrap(
        api.POST('/v1/orgs/{org}/sso/connections', {
          params: { path: { org } },
          body: kind === 'oidc' ? { kind, name, defaultRole, issuer, clientId, clientSecret } : { kind, name, defaultRole, metadataXml },
        }),
      ),
    [['orgs', org, 'sso']],
    () => {
      setClientSecret('');
      onAdded();
    },
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    add.mutate(undefined);
  };
  return (
    <form className="form" onSubmit={submit} aria-label="Add an SSO connection">
      <SelectField label="Protocol" value={kind} onChange={(e) => setKind(e.target.value as 'oidc' | 'saml')} options={[{ value: 'oidc', label: 'OpenID Connect' }, { value: 'saml', label: 'SAML 2.0' }]} />
      <Field label="Connection name" required value={name} onChange={(e) => setName(e.target.value)} />
      <SelectField label="Role of a new member" value={defaultRole} onChange={(e) => setDefaultRole(e.target.value as DefaultRole)} options={['viewer', 'editor', 'admin'].map((r) => ({ value: r, label: r }))} />
      {kind === 'oidc' ? (
        <>
          <Field label="Issuer URL" type="url" required value={issuer} onChange={(e) => setIssuer(e.target.value)} />
          <Field label="Client id" required value={clientId} onChange={(e) => setClientId(e.target.value)} />
          <Field label="Client secret" type="password" autoComplete="off" required hint="Sealed and never shown again." value={clientSecret} onChange={(e) => setClientSecret(e.target.value)} />
        </>
      ) : (
        <div className="field">
          <label htmlFor="saml-metadata">IdP metadata XML</label>
          <textarea id="saml-metadata" required rows={6} value={metadataXml} onChange={(e) => setMetadataXml(e.target.value)} />
        </div>
      )}
      <ApiErrorNotice error={add.error} title="Connection not added" />
      <Button type="submit" variant="primary" busy={add.isPending}>
        Add connection
      </Button>
    </form>
  );
}

function Domains({ org, connections }: { org: string; connections: ReadonlyArray<{ id: string; name: string }> }) {
  const key = ['orgs', org, 'sso', 'domains'];
  const domains = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/sso/domains', { params: { path: { org } } }))).domains });
  const [domain, setDomain] = useState('');
  const [connectionId, setConnectionId] = useState('');
  const claim = useAction(
    () => unwrap(api.POST('/v1/orgs/{org}/sso/domains', { params: { path: { org } }, body: { domain: domain.trim(), connectionId: connectionId || (connections[0]?.id ?? '') } })),
    [key],
    () => setDomain(''),
  );
  const remove = useAction((id: string) => unwrap(api.DELETE('/v1/orgs/{org}/sso/domains/{domain}', { params: { path: { org, domain: id } } })), [key]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    claim.mutate(undefined);
  };
  return (
    <>
      <Table
        caption="Email domains"
        rows={domains.data ?? []}
        rowKey={(d) => d.id}
        empty="No domain claimed."
        columns={[
          { header: 'Domain', cell: (d) => d.domain },
          { header: 'Connection', cell: (d) => connections.find((c) => c.id === d.connectionId)?.name ?? d.connectionId },
          { header: 'Verified', cell: (d) => (d.verified ? <span className="badge badge-ok">Verified</span> : <span className="badge badge-muted">Waiting for the operator</span>) },
          { header: 'Actions', cell: (d) => <Button onClick={() => remove.mutate(d.domain)} aria-label={`Remove ${d.domain}`}>Remove</Button> },
        ]}
      />
      <ApiErrorNotice error={domains.error ?? remove.error} />
      {connections.length ? (
        <form className="form" onSubmit={submit} aria-label="Claim an email domain">
          <Field label="Domain" required placeholder="example.com" value={domain} onChange={(e) => setDomain(e.target.value)} />
          <SelectField label="For connection" value={connectionId || (connections[0]?.id ?? '')} onChange={(e) => setConnectionId(e.target.value)} options={connections.map((c) => ({ value: c.id, label: c.name }))} />
          <ApiErrorNotice error={claim.error} title="Domain not claimed" />
          <Button type="submit" busy={claim.isPending}>
            Claim domain
          </Button>
        </form>
      ) : null}
    </>
  );
}

function Required({ org }: { org: string }) {
  const key = ['orgs', org, 'sso', 'settings'];
  const settings = useQuery({ queryKey: key, queryFn: () => unwrap(api.GET('/v1/orgs/{org}/sso/settings', { params: { path: { org } } })) });
  const set = useAction((ssoRequired: boolean) => unwrap(api.PUT('/v1/orgs/{org}/sso/settings', { params: { path: { org } }, body: { ssoRequired } })), [key]);
  return (
    <>
      <label className="check">
        <input type="checkbox" checked={settings.data?.ssoRequired ?? false} disabled={!settings.data || set.isPending} onChange={(e) => set.mutate(e.target.checked)} />
        Require SSO of every member (owners keep their password as a way back in)
      </label>
      <ApiErrorNotice error={settings.error ?? set.error} title="SSO setting not changed" />
    </>
  );
}

export function SsoSection({ org }: { org: string }) {
  const key = ['orgs', org, 'sso'];
  const connections = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/sso/connections', { params: { path: { org } } }))).connections });
  const toggle = useAction(
    ({ id, enabled }: { id: string; enabled: boolean }) => unwrap(api.PATCH('/v1/orgs/{org}/sso/connections/{connection}', { params: { path: { org, connection: id } }, body: { enabled } })),
    [key],
  );
  const remove = useAction((id: string) => unwrap(api.DELETE('/v1/orgs/{org}/sso/connections/{connection}', { params: { path: { org, connection: id } } })), [key]);
  const [adding, setAdding] = useState(false);
  return (
    <Section title="Single sign-on" actions={<Button onClick={() => setAdding(!adding)} aria-expanded={adding}>{adding ? 'Close' : 'Add connection'}</Button>}>
      <ApiErrorNotice error={connections.error ?? toggle.error ?? remove.error} />
      <Table
        caption="SSO connections"
        rows={connections.data ?? []}
        rowKey={(c) => c.id}
        empty="No SSO connection."
        columns={[
          { header: 'Name', cell: (c) => c.name },
          { header: 'Protocol', cell: (c) => c.kind.toUpperCase() },
          { header: 'Register at the IdP', cell: (c) => <code className="mono">{c.redirectUri ?? c.acsUrl ?? ''}</code> },
          { header: 'Enabled', cell: (c) => (c.enabled ? 'Yes' : 'No') },
          {
            header: 'Actions',
            cell: (c) => (
              <div className="row">
                <Button onClick={() => toggle.mutate({ id: c.id, enabled: !c.enabled })}>{c.enabled ? 'Disable' : 'Enable'}</Button>
                <Button variant="danger" onClick={() => remove.mutate(c.id)} aria-label={`Delete connection ${c.name}`}>
                  Delete
                </Button>
              </div>
            ),
          },
        ]}
      />
      {adding ? <AddConnection org={org} onAdded={() => setAdding(false)} /> : null}
      <h3>Domains</h3>
      <p className="muted">
        A platform operator verifies a claimed domain; give them this organisation&apos;s id: <code className="mono">{org}</code>
      </p>
      <Domains org={org} connections={connections.data ?? []} />
      <h3>Requirement</h3>
      <Required org={org} />
    </Section>
  );
}
