/** Members and roles, invitations and ownership transfer of the current org. */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Field, Notice, Section, SelectField, Table } from '../../components/index.ts';

type Role = 'owner' | 'admin' | 'editor' | 'viewer';
const ROLES: readonly Role[] = ['owner', 'admin', 'editor', 'viewer'];
const roleOptions = ROLES.map((r) => ({ value: r, label: r }));

function Members({ org, manage, myId }: { org: string; manage: boolean; myId: string }) {
  const key = ['orgs', org, 'members'];
  const members = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/members', { params: { path: { org } } }))).members });
  const setRole = useAction(
    ({ user, role }: { user: string; role: Role }) => unwrap(api.PATCH('/v1/orgs/{org}/members/{user}', { params: { path: { org, user } }, body: { role } })),
    [key],
  );
  const [removing, setRemoving] = useState<{ userId: string; email: string } | null>(null);
  const remove = useAction((user: string) => unwrap(api.DELETE('/v1/orgs/{org}/members/{user}', { params: { path: { org, user } } })), [key], () => setRemoving(null));
  return (
    <>
      <ApiErrorNotice error={members.error ?? setRole.error} />
      <Table
        caption="Members and their roles"
        rows={members.data ?? []}
        rowKey={(m) => m.userId}
        columns={[
          { header: 'Email', cell: (m) => m.email },
          {
            header: 'Role',
            cell: (m) =>
              manage && m.userId !== myId ? (
                <SelectField label={`Role of ${m.email}`} className="field-inline" value={m.role} options={roleOptions} onChange={(e) => setRole.mutate({ user: m.userId, role: e.target.value as Role })} />
              ) : (
                m.role
              ),
          },
          { header: 'Joined', cell: (m) => new Date(m.joinedAt).toLocaleDateString('en') },
          {
            header: 'Actions',
            cell: (m) =>
              manage && m.userId !== myId ? (
                <Button variant="danger" onClick={() => setRemoving(m)} aria-label={`Remove ${m.email}`}>
                  Remove
                </Button>
              ) : null,
          },
        ]}
      />
      <ConfirmDialog
        open={removing !== null}
        title="Remove this member?"
        confirmLabel="Remove member"
        danger
        busy={remove.isPending}
        error={remove.error}
        onCancel={() => setRemoving(null)}
        onConfirm={() => removing && remove.mutate(removing.userId)}
      >
        <p>{removing?.email} loses access to the organisation on every node at once.</p>
      </ConfirmDialog>
    </>
  );
}

function Invitations({ org }: { org: string }) {
  const key = ['orgs', org, 'invitations'];
  const list = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/invitations', { params: { path: { org } } }))).invitations });
  const [email, setEmail] = useState('');
  const [role, setRole] = useState<Role>('editor');
  const invite = useAction(() => unwrap(api.POST('/v1/orgs/{org}/invitations', { params: { path: { org } }, body: { email: email.trim(), role } })), [key], () => setEmail(''));
  const revoke = useAction((invitation: string) => unwrap(api.DELETE('/v1/orgs/{org}/invitations/{invitation}', { params: { path: { org, invitation } } })), [key]);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    invite.mutate(undefined);
  };
  return (
    <>
      <h3>Invite someone</h3>
      <form className="form" onSubmit={submit} aria-label="Invite a member">
        <Field label="Email to invite" type="email" name="inviteEmail" required value={email} onChange={(e) => setEmail(e.target.value)} />
        <SelectField label="Role" name="inviteRole" value={role} options={roleOptions} onChange={(e) => setRole(e.target.value as Role)} />
        <ApiErrorNotice error={invite.error} />
        {invite.isSuccess ? <Notice tone="success">Invitation sent to {invite.data.email}.</Notice> : null}
        <Button type="submit" variant="primary" busy={invite.isPending}>
          Send invitation
        </Button>
      </form>
      <ApiErrorNotice error={list.error ?? revoke.error} />
      <Table
        caption="Invitations"
        rows={list.data ?? []}
        rowKey={(i) => i.id}
        empty="No invitation sent."
        columns={[
          { header: 'Email', cell: (i) => i.email },
          { header: 'Role', cell: (i) => i.role },
          { header: 'Status', cell: (i) => i.status },
          { header: 'Expires', cell: (i) => new Date(i.expiresAt).toLocaleString('en') },
          {
            header: 'Actions',
            cell: (i) =>
              i.status === 'pending' ? (
                <Button onClick={() => revoke.mutate(i.id)} aria-label={`Revoke the invitation of ${i.email}`}>
                  Revoke
                </Button>
              ) : null,
          },
        ]}
      />
    </>
  );
}

function Transfer({ org, myId, onTransferred }: { org: string; myId: string; onTransferred: (email: string) => void }) {
  const members = useQuery({ queryKey: ['orgs', org, 'members'], queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/members', { params: { path: { org } } }))).members });
  const others = (members.data ?? []).filter((m) => m.userId !== myId);
  const [to, setTo] = useState('');
  const [asking, setAsking] = useState(false);
  const chosen = others.find((m) => m.userId === to) ?? others[0];
  const transfer = useAction(
    () => unwrap(api.POST('/v1/orgs/{org}/transfer-ownership', { params: { path: { org } }, body: { userId: chosen?.userId ?? '' } })),
    [['orgs']],
    () => {
      setAsking(false);
      onTransferred(chosen?.email ?? '');
    },
  );
  if (others.length === 0) return <p className="muted">Invite another member first to transfer the ownership.</p>;
  return (
    <>
      <div className="row">
        <SelectField label="New owner" value={chosen?.userId ?? ''} options={others.map((m) => ({ value: m.userId, label: m.email }))} onChange={(e) => setTo(e.target.value)} />
        <Button variant="danger" onClick={() => setAsking(true)}>
          Transfer ownership
        </Button>
      </div>
      <ConfirmDialog open={asking} title="Transfer the ownership?" confirmLabel="Transfer" danger busy={transfer.isPending} error={transfer.error} onCancel={() => setAsking(false)} onConfirm={() => transfer.mutate(undefined)}>
        <p>The member you chose becomes the owner and you become an admin.</p>
      </ConfirmDialog>
    </>
  );
}

export function MembersSection({ org, role, myId }: { org: string; role: string; myId: string }) {
  const manage = allows(role, 'members.manage');
  // Once transferred, the refreshed role hides the transfer control: the outcome is said here instead.
  const [handedTo, setHandedTo] = useState<{ org: string; email: string } | null>(null);
  return (
    <>
      <Section title="Members and roles">
        <Members org={org} manage={manage} myId={myId} />
        {manage ? <Invitations org={org} /> : null}
      </Section>
      {role === 'owner' ? (
        <Section title="Ownership">
          <Transfer org={org} myId={myId} onTransferred={(email) => setHandedTo({ org, email })} />
        </Section>
      ) : handedTo?.org === org ? (
        <Section title="Ownership">
          <Notice tone="success">Ownership transferred to {handedTo.email}; you are an admin now.</Notice>
        </Section>
      ) : null}
    </>
  );
}
