/**
 * Sign-up: email and password, then the code mailed to that address verifies it. The mail's link
 * (?token=) opens the verification step with the code filled in (and wiped from the address).
 */
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { useLinkToken } from '../../api/link-token.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, Section } from '../../components/index.ts';

export default function SignUpPage() {
  const linked = useLinkToken();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState(linked);
  const [stage, setStage] = useState<'form' | 'verify' | 'done'>(linked ? 'verify' : 'form');
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
  const signUp = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await unwrap(api.POST('/v1/auth/signup', { body: { email, password } }));
      setStage('verify');
    });
  };
  const verify = (event: FormEvent) => {
    event.preventDefault();
    void run(async () => {
      await unwrap(api.POST('/v1/auth/verify-email', { body: { token: code.trim() } }));
      setStage('done');
    });
  };

  return (
    <Page title="Create an account">
      {stage === 'form' ? (
        <Section title="Your email and a password">
          <form className="form" onSubmit={signUp} aria-label="Create an account">
            <Field label="Email" type="email" name="email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
            <Field label="Password" type="password" name="new-password" autoComplete="new-password" required hint="At least 15 characters; a passphrase of a few unrelated words works well." value={password} onChange={(e) => setPassword(e.target.value)} />
            <ApiErrorNotice error={error} title="Sign-up refused" />
            <Button type="submit" variant="primary" busy={busy}>
              Create account
            </Button>
          </form>
        </Section>
      ) : null}
      {stage === 'verify' ? (
        <Section title="Check your email">
          {email ? <Notice tone="info">If this address can be used, a verification code is on its way to {email}.</Notice> : null}
          <form className="form" onSubmit={verify} aria-label="Verify your email">
            <Field label="Verification code" name="code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
            <ApiErrorNotice error={error} title="Verification refused" />
            <Button type="submit" variant="primary" busy={busy}>
              Verify email
            </Button>
          </form>
        </Section>
      ) : null}
      {stage === 'done' ? (
        <Notice tone="success" title="Email verified">
          <p>
            Your account is ready. <Link to="/sign-in">Sign in</Link>.
          </p>
        </Notice>
      ) : null}
    </Page>
  );
}
