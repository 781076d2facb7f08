/** Passkeys: list, add (through the browser's WebAuthn), remove (after a step-up when asked). */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ME_KEY } from '../../api/session.ts';
import { createCredential } from '../../api/webauthn.ts';
import { ApiErrorNotice, Button, ConfirmDialog, Field, Notice, Section, Table, useStepUp } from '../../components/index.ts';
import { useAction } from './useAction.ts';

const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString('en') : 'Never');

export function PasskeysSection() {
  const queryClient = useQueryClient();
  const list = useQuery({ queryKey: ['me', 'passkeys'], queryFn: () => unwrap(api.GET('/v1/me/passkeys')) });
  const [name, setName] = useState('My passkey');
  const [password, setPassword] = useState('');
  const [removing, setRemoving] = useState<{ id: string; name: string } | null>(null);
  const action = useAction();
  const stepUp = useStepUp();
  const refresh = async () => {
    await queryClient.invalidateQueries({ queryKey: ['me', 'passkeys'] });
    await queryClient.invalidateQueries({ queryKey: ME_KEY });
  };

  const add = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      const options = await unwrap(api.POST('/v1/me/passkeys/options', { body: password ? { password } : {} }));
      const response = await createCredential(options);
      await unwrap(api.POST('/v1/me/passkeys', { body: { name, response: response as never } }));
      setPassword('');
      await refresh();
      return `Passkey "${name}" added.`;
    });
  };
  const remove = () => {
    const target = removing;
    if (!target) return;
    void action.run(async () => {
      await stepUp.run(() => unwrap(api.DELETE('/v1/me/passkeys/{id}', { params: { path: { id: target.id } } })));
      setRemoving(null);
      await refresh();
      return `Passkey "${target.name}" removed.`;
    });
  };

  return (
    <Section title="Passkeys">
      <Table
        caption="Your passkeys"
        rows={list.data?.passkeys ?? []}
        rowKey={(p) => p.id}
        empty={list.isPending ? 'Loading…' : 'No passkeys yet.'}
        columns={[
          { header: 'Name', cell: (p) => p.name },
          { header: 'Added', cell: (p) => when(p.createdAt) },
          { header: 'Last used', cell: (p) => when((p as { lastUsedAt?: string | null }).lastUsedAt) },
          { header: 'Actions', cell: (p) => <Button variant="danger" onClick={() => setRemoving({ id: p.id, name: p.name })} aria-label={`Remove passkey ${p.name}`}>Remove</Button> },
        ]}
      />
      <ApiErrorNotice error={list.error} />
      <form className="form" onSubmit={add} aria-label="Add a passkey">
        <Field label="Passkey name" name="passkey-name" maxLength={64} required value={name} onChange={(e) => setName(e.target.value)} />
        <Field label="Current password" type="password" name="passkey-password" autoComplete="current-password" hint="Asked when your account has no second factor yet." value={password} onChange={(e) => setPassword(e.target.value)} />
        <Button type="submit" busy={action.busy}>
          Add a passkey
        </Button>
      </form>
      {action.done ? <Notice tone="success">{action.done}</Notice> : null}
      <ApiErrorNotice error={action.error} />
      <ConfirmDialog open={removing !== null} title="Remove this passkey?" confirmLabel="Remove passkey" danger busy={action.busy} onConfirm={remove} onCancel={() => setRemoving(null)}>
        <p>&quot;{removing?.name}&quot; will no longer sign you in.</p>
      </ConfirmDialog>
      {stepUp.dialog}
    </Section>
  );
}
