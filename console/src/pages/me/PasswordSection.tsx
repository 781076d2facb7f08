/** Password change: the current one, then the new one; other sessions are signed out by the API. */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Notice, Section } from '../../components/index.ts';
import { useAction } from './useAction.ts';

export function PasswordSection() {
  const [current, setCurrent] = useState('');
  const [next, setNext] = useState('');
  const action = useAction();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      await unwrap(api.POST('/v1/auth/password-change', { body: { currentPassword: current, newPassword: next } }));
      setCurrent('');
      setNext('');
      return 'Password changed. Your other sessions were signed out.';
    });
  };
  return (
    <Section title="Password">
      <form className="form" onSubmit={submit} aria-label="Change your password">
        <Field label="Current password" type="password" name="current-password" autoComplete="current-password" required value={current} onChange={(e) => setCurrent(e.target.value)} />
        <Field label="New password" type="password" name="new-password" autoComplete="new-password" required value={next} onChange={(e) => setNext(e.target.value)} />
        <Button type="submit" busy={action.busy}>
          Change password
        </Button>
      </form>
      {action.done ? <Notice tone="success">{action.done}</Notice> : null}
      <ApiErrorNotice error={action.error} title="Password not changed" />
    </Section>
  );
}
