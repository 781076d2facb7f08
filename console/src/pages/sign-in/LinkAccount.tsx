/** A social sign-in whose email already has an account: the account's password confirms the link. */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Page, Section } from '../../components/index.ts';
import type { MfaChallenge } from './SecondStep.tsx';

export function LinkAccount({ linkToken, onSecondStep, onDone }: { linkToken: string; onSecondStep: (c: MfaChallenge) => void; onDone: () => Promise<void> }) {
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await unwrap(api.POST('/v1/auth/social/link/confirm', { body: { linkToken, password } }));
      if ('mfaRequired' in result) onSecondStep(result);
      else await onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Page title="Link your account" intro="An account with this email already exists. Enter its password to sign in with this provider from now on.">
      <Section title="Confirm with your password">
        <form className="form" onSubmit={(e) => void submit(e)} aria-label="Link your account">
          <Field label="Password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <ApiErrorNotice error={error} title="Link refused" />
          <Button type="submit" variant="primary" busy={busy}>
            Link and sign in
          </Button>
        </form>
      </Section>
    </Page>
  );
}
