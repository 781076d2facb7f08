/**
 * The operators' user list: search by a part of the email, page with the API's cursors, and per
 * user disable or re-enable the account (their sessions end at once) or reset their second factors
 * (the API asks for the operator's own fresh second factor: the step-up dialog asks for it and the
 * reset is tried again).
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import type { paths } from '../../api/schema.d.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Field, Notice, Section, Table, useCursorPages, useStepUp } from '../../components/index.ts';
import '../../styles/pages.css';

type ListedUser = paths['/v1/admin/users']['get']['responses'][200]['content']['application/json']['users'][number];
type Action = { kind: 'disable' | 'enable' | 'reset'; user: ListedUser };

const ASK: Record<Action['kind'], { title: string; confirm: string; text: string; done: string }> = {
  disable: {
    title: 'Disable this user?',
    confirm: 'Disable user',
    text: 'Their sessions end at once on every node and they cannot sign in until an operator enables the account again.',
    done: 'User disabled: their sessions ended on every node.',
  },
  enable: { title: 'Enable this user again?', confirm: 'Enable user', text: 'They can sign in again.', done: 'User enabled.' },
  reset: {
    title: "Reset this user's second factors?",
    confirm: 'Reset factors',
    text: 'Their TOTP, passkeys and recovery codes are removed, their sessions end and they are mailed. This needs a second factor of your own within the last 5 minutes.',
    done: 'Every second factor of the user was removed; their sessions ended and they were mailed.',
  },
};

function SearchForm({ onSearch }: { onSearch: (q: string) => void }) {
  const [text, setText] = useState('');
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onSearch(text.trim());
  };
  return (
    <form className="filters" role="search" aria-label="Search users" onSubmit={submit}>
      <Field label="Email contains" type="search" maxLength={254} value={text} onChange={(e) => setText(e.target.value)} />
      <Button type="submit">Search</Button>
      <Button
        onClick={() => {
          setText('');
          onSearch('');
        }}
      >
        Clear
      </Button>
    </form>
  );
}

export function UserList({ selfId }: { selfId: string }) {
  const [search, setSearch] = useState('');
  const pages = useCursorPages<string>();
  const client = useQueryClient();
  const users = useQuery({
    queryKey: ['admin-users', search, pages.cursor],
    queryFn: () => unwrap(api.GET('/v1/admin/users', { params: { query: { ...(search ? { q: search } : {}), ...(pages.cursor ? { cursor: pages.cursor } : {}) } } })),
    placeholderData: (prev) => prev,
  });
  const [action, setAction] = useState<Action | null>(null);
  const [state, setState] = useState<{ busy: boolean; error: unknown; done: string | null }>({ busy: false, error: null, done: null });
  const stepUp = useStepUp();

  const run = async (a: Action) => {
    setState({ busy: true, error: null, done: null });
    try {
      const path = { params: { path: { id: a.user.id } } };
      if (a.kind === 'reset') await stepUp.run(() => unwrap(api.POST('/v1/admin/users/{id}/mfa/reset', { ...path, body: {} })));
      else await unwrap(api.POST('/v1/admin/users/{id}/disable', { ...path, body: { disabled: a.kind === 'disable' } }));
      setState({ busy: false, error: null, done: `${a.user.email}: ${ASK[a.kind].done}` });
      setAction(null);
      await client.invalidateQueries({ queryKey: ['admin-users'] });
    } catch (error) {
      setState({ busy: false, error, done: null });
    }
  };
  const ask = (a: Action) => {
    setState({ busy: false, error: null, done: null });
    setAction(a);
  };

  return (
    <Section title="Users">
      <SearchForm
        onSearch={(q) => {
          pages.reset();
          setSearch(q);
        }}
      />
      <ApiErrorNotice error={users.error} />
      {state.done ? <Notice tone="success">{state.done}</Notice> : null}
      <Table
        caption="Users, oldest first"
        rows={users.data?.users ?? []}
        rowKey={(u) => u.id}
        empty={search ? 'No user matches.' : 'No users yet.'}
        pagination={pages.pagination(users.data?.nextCursor)}
        columns={[
          { header: 'Email', cell: (u) => <span className="mono">{u.email}</span> },
          { header: 'Created', cell: (u) => new Date(u.createdAt).toLocaleString('en') },
          { header: 'Status', cell: (u) => (u.disabled ? <span className="badge badge-bad">disabled</span> : <span className="badge badge-ok">active</span>) },
          { header: 'Second factor', cell: (u) => (u.hasSecondFactor ? 'yes' : <span className="badge-muted">none</span>) },
          {
            header: 'Actions',
            cell: (u) => (
              <div className="row user-actions">
                {u.disabled ? (
                  <Button onClick={() => ask({ kind: 'enable', user: u })} aria-label={`Enable ${u.email}`}>
                    Enable
                  </Button>
                ) : (
                  <Button variant="danger" disabled={u.id === selfId} onClick={() => ask({ kind: 'disable', user: u })} aria-label={`Disable ${u.email}`}>
                    Disable
                  </Button>
                )}
                <Button disabled={u.id === selfId || !u.hasSecondFactor} onClick={() => ask({ kind: 'reset', user: u })} aria-label={`Reset factors of ${u.email}`}>
                  Reset factors
                </Button>
              </div>
            ),
          },
        ]}
      />
      <ConfirmDialog
        open={action !== null}
        title={action ? ASK[action.kind].title : ''}
        confirmLabel={action ? ASK[action.kind].confirm : ''}
        danger={action?.kind !== 'enable'}
        busy={state.busy}
        error={state.error}
        onCancel={() => setAction(null)}
        onConfirm={() => {
          if (action) void run(action);
        }}
      >
        <p>
          <span className="mono">{action?.user.email}</span>: {action ? ASK[action.kind].text : ''}
        </p>
      </ConfirmDialog>
      {stepUp.dialog}
    </Section>
  );
}
