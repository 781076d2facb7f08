/** Sessions (revoke one, revoke all the others) and the devices that signed in. */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Notice, Section, Table } from '../../components/index.ts';
import { useAction } from './useAction.ts';

const when = (iso: string) => new Date(iso).toLocaleString('en');

export function SessionsSection() {
  const queryClient = useQueryClient();
  const sessions = useQuery({ queryKey: ['me', 'sessions'], queryFn: () => unwrap(api.GET('/v1/me/sessions')) });
  const devices = useQuery({ queryKey: ['me', 'devices'], queryFn: () => unwrap(api.GET('/v1/me/devices')) });
  const [confirmAll, setConfirmAll] = useState(false);
  const action = useAction();
  const refresh = () => queryClient.invalidateQueries({ queryKey: ['me', 'sessions'] });

  const revoke = (id: string) =>
    void action.run(async () => {
      await unwrap(api.DELETE('/v1/me/sessions/{id}', { params: { path: { id } } }));
      await refresh();
      return 'Session signed out.';
    });
  const revokeAll = () =>
    void action.run(async () => {
      const result = await unwrap(api.POST('/v1/auth/logout-all', { body: {} }));
      setConfirmAll(false);
      queryClient.clear();
      window.location.assign('/console/sign-in');
      return `${result.revoked} sessions signed out.`;
    });

  return (
    <Section title="Sessions and devices" actions={<Button variant="danger" onClick={() => setConfirmAll(true)}>Sign out everywhere</Button>}>
      <Table
        caption="Where you are signed in"
        rows={sessions.data?.sessions ?? []}
        rowKey={(s) => s.id}
        empty={sessions.isPending ? 'Loading…' : 'No sessions.'}
        columns={[
          { header: 'Browser or app', cell: (s) => (s.current ? <strong>This session · {s.userAgent ?? 'unknown'}</strong> : (s.userAgent ?? 'unknown')) },
          { header: 'IP address', cell: (s) => s.ip ?? '—' },
          { header: 'Signed in', cell: (s) => when(s.createdAt) },
          { header: 'Last used', cell: (s) => when(s.lastUsedAt) },
          { header: 'Actions', cell: (s) => (s.current ? null : <Button onClick={() => revoke(s.id)} aria-label={`Sign out session from ${s.ip ?? 'unknown'} started ${when(s.createdAt)}`}>Sign out</Button>) },
        ]}
      />
      <ApiErrorNotice error={sessions.error} />
      <Table
        caption="Devices that signed in"
        rows={devices.data?.devices ?? []}
        rowKey={(d) => d.id}
        empty={devices.isPending ? 'Loading…' : 'No devices.'}
        columns={[
          { header: 'Browser or app', cell: (d) => d.userAgent ?? 'unknown' },
          { header: 'Networks', cell: (d) => d.networks.join(', ') || '—' },
          { header: 'First seen', cell: (d) => when(d.firstSeenAt) },
          { header: 'Last seen', cell: (d) => when(d.lastSeenAt) },
        ]}
      />
      {action.done ? <Notice tone="success">{action.done}</Notice> : null}
      <ApiErrorNotice error={action.error} />
      <ConfirmDialog open={confirmAll} title="Sign out everywhere?" confirmLabel="Sign out all sessions" danger busy={action.busy} onConfirm={revokeAll} onCancel={() => setConfirmAll(false)}>
        <p>Every session of your account ends, this one included.</p>
      </ConfirmDialog>
    </Section>
  );
}
