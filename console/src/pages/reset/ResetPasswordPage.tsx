/**
 * Password reset: ask for a code by email, then set a new password with it. The mail's link
 * (?token=) opens the second step with the code filled in (and wiped from the address).
 */
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { useLinkToken } from '../../api/link-token.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, Section } from '../../components/index.ts';

export default function ResetPasswordPage() {
  const linked = useLinkToken();
  const [email, setEmail] = useState('');
  const [code, setCode] = useState(linked);
  const [password, setPassword] = useState('');
  const [stage, setStage] = useState<'ask' | 'confirm' | 'done'>(linked ? 'confirm' : 'ask');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const run = async (work: () => Promise<void>) => {
    setBusy(true);
    setError(null);
    try {
      await work();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const ask = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await unwrap(api.POST('/v1/auth/password-reset', { body: { email } }));
      setStage('confirm');
    });
  };
  const confirm = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await unwrap(api.POST('/v1/auth/password-reset/confirm', { body: { token: code.trim(), password } }));
      setStage('done');
    });
  };

  return (
    <Page title="Reset your password">
      {stage === 'ask' ? (
        <Section title="Get a reset code">
          <form className="form" onSubmit={ask} aria-label="Request a password reset">
            <Field label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
            <ApiErrorNotice error={error} />
            <Button type="submit" variant="primary" busy={busy}>
              Email me a code
            </Button>
          </form>
        </Section>
      ) : null}
      {stage === 'confirm' ? (
        <Section title="Choose a new password">
          {email ? <Notice tone="info">If an account uses {email}, a reset code is on its way.</Notice> : null}
          <form className="form" onSubmit={confirm} aria-label="Set a new password">
            <Field label="Reset code" name="code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
            <Field label="New password" type="password" name="new-password" autoComplete="new-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
            <ApiErrorNotice error={error} title="Reset refused" />
            <Button type="submit" variant="primary" busy={busy}>
              Set new password
            </Button>
          </form>
        </Section>
      ) : null}
      {stage === 'done' ? (
        <Notice tone="success" title="Password changed">
          <p>
            Every session of the account was signed out. <Link to="/sign-in">Sign in</Link> with the new password.
          </p>
        </Notice>
      ) : null}
    </Page>
  );
}
