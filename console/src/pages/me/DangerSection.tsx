/** Data export (a JSON download) and account deletion (password, and a step-up when the account has a second factor). */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Section, useStepUp } from '../../components/index.ts';
import { useAction } from './useAction.ts';

export function DangerSection() {
  const queryClient = useQueryClient();
  const [password, setPassword] = useState('');
  const action = useAction();
  const stepUp = useStepUp();
  const remove = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      await stepUp.run(() => unwrap(api.DELETE('/v1/me', { body: { password } })));
      queryClient.clear();
      window.location.assign('/console/sign-in#deleted=1');
    });
  };
  return (
    <>
      <Section title="Your data">
        <p>Everything Gatehouse holds about you, as a JSON file.</p>
        <a className="btn btn-secondary" href="/v1/me/export" download="gatehouse-export.json">
          Download my data
        </a>
      </Section>
      <Section title="Delete your account">
        <p>Your sessions end, your personal data is deleted or anonymised, and this cannot be undone.</p>
        <form className="form" onSubmit={remove} aria-label="Delete your account">
          <Field label="Password to confirm" type="password" name="delete-password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <Button type="submit" variant="danger" busy={action.busy}>
            Delete my account
          </Button>
        </form>
        <ApiErrorNotice error={action.error} title="Account not deleted" />
        {stepUp.dialog}
      </Section>
    </>
  );
}
