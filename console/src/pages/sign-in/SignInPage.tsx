/**
 * Sign-in: email and password in cookie mode, then the second step when the account has one.
 * On success the user goes to `?next=` (a console path only) or to the account page.
 */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { useNavigate, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { ME_KEY } from '../../api/session.ts';
import { ApiErrorNotice, Button, Field, Page, Section } from '../../components/index.ts';
import { SecondStep, type MfaChallenge } from './SecondStep.tsx';

/** A `next` that stays inside the console (a path starting with one slash), else the account page. */
export function safeNext(next: string | null): string {
  return next && /^\/(?![/\\])/.test(next) ? next : '/me';
}

export default function SignInPage() {
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [challenge, setChallenge] = useState<MfaChallenge | null>(null);

  const done = async () => {
    await queryClient.invalidateQueries({ queryKey: ME_KEY });
    await navigate(safeNext(params.get('next')), { replace: true });
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const result = await unwrap(api.POST('/v1/auth/login', { body: { email, password, mode: 'cookie' } }));
      if ('mfaRequired' in result) setChallenge(result);
      else await done();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  if (challenge) return <SecondStep challenge={challenge} onDone={done} onRestart={() => setChallenge(null)} />;

  return (
    <Page title="Sign in" intro="Sign in to manage your account, organisations, API keys and the AI gateway.">
      <Section title="With your password">
        <form className="form" onSubmit={(e) => void submit(e)} aria-label="Sign in with your password">
          <Field label="Email" type="email" name="email" autoComplete="username" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <Field label="Password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <ApiErrorNotice error={error} title="Sign-in refused" />
          <Button type="submit" variant="primary" busy={busy}>
            Sign in
          </Button>
        </form>
      </Section>
    </Page>
  );
}
