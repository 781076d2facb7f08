/**
 * Sign-in: password (cookie mode), passkey without a password, social providers, SSO by email
 * domain, then the second step when the account has one. A social or SSO sign-in started here
 * comes back through the API's redirect mode: signed in, or to this page with what is left to do
 * in the URL fragment (#mfaToken, #linkToken, #error), which is read once and wiped from the address bar.
 */
import { useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { getAssertion } from '../../api/webauthn.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, Section } from '../../components/index.ts';
import { LinkAccount } from './LinkAccount.tsx';
import { SecondStep, type MfaChallenge } from './SecondStep.tsx';
import { ExternalSignIn } from './ExternalSignIn.tsx';
import { useFinish } from './useFinish.ts';

interface Handoff {
  challenge?: MfaChallenge;
  linkToken?: string;
  error?: string;
  next?: string;
}

/** What a redirect-mode callback left in the fragment, read once. */
function readHandoff(): Handoff {
  if (!window.location.hash) return {};
  const params = new URLSearchParams(window.location.hash.slice(1));
  window.history.replaceState(window.history.state, '', window.location.pathname + window.location.search);
  const mfaToken = params.get('mfaToken');
  const methods = (params.get('methods') ?? '').split(',').filter((m): m is MfaChallenge['methods'][number] => m === 'totp' || m === 'recovery' || m === 'webauthn');
  return {
    ...(mfaToken ? { challenge: { mfaToken, methods } } : {}),
    ...(params.get('linkToken') ? { linkToken: params.get('linkToken') ?? '' } : {}),
    ...(params.get('error') ? { error: params.get('error') ?? '' } : {}),
    ...(params.get('next') ? { next: params.get('next') ?? '' } : {}),
  };
}

export default function SignInPage() {
  const [params] = useSearchParams();
  const [handoff] = useState(readHandoff);
  const next = handoff.next ?? params.get('next');
  const finish = useFinish(next);
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState<'password' | 'passkey' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [challenge, setChallenge] = useState<MfaChallenge | null>(handoff.challenge ?? null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy('password');
    setError(null);
    try {
      const result = await unwrap(api.POST('/v1/auth/login', { body: { email, password, mode: 'cookie' } }));
      if ('mfaRequired' in result) setChallenge(result);
      else await finish();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const passkey = async () => {
    setBusy('passkey');
    setError(null);
    try {
      const options = await unwrap(api.POST('/v1/auth/passkey/options', { body: {} }));
      const response = await getAssertion(options);
      await unwrap(api.POST('/v1/auth/passkey/verify', { body: { mode: 'cookie', response: response as never } }));
      await finish();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  if (challenge) return <SecondStep challenge={challenge} onDone={finish} onRestart={() => setChallenge(null)} />;
  if (handoff.linkToken) return <LinkAccount linkToken={handoff.linkToken} onSecondStep={setChallenge} onDone={finish} />;

  return (
    <Page title="Sign in" intro="Sign in to manage your account, organisations, API keys and the AI gateway.">
      {handoff.error ? (
        <Notice tone="error" title="That sign-in did not finish">
          <p>
            <code className="error-code">{handoff.error}</code> Try again, or sign in another way.
          </p>
        </Notice>
      ) : null}
      <Section title="With your password">
        <form className="form" onSubmit={(e) => void submit(e)} aria-label="Sign in with your password">
          <Field label="Email" type="email" name="email" autoComplete="username webauthn" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <Field label="Password" type="password" name="password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <ApiErrorNotice error={error} title="Sign-in refused" />
          <div className="row">
            <Button type="submit" variant="primary" busy={busy === 'password'}>
              Sign in
            </Button>
            <Link to="/reset-password">Forgot your password?</Link>
          </div>
        </form>
      </Section>
      <Section title="With a passkey">
        <p className="muted">Use the passkey on this device or your phone; no password needed.</p>
        <Button onClick={() => void passkey()} busy={busy === 'passkey'}>
          Sign in with a passkey
        </Button>
      </Section>
      <ExternalSignIn next={next} />
      <p>
        New here? <Link to="/sign-up">Create an account</Link>.
      </p>
    </Page>
  );
}
