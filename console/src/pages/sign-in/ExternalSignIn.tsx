/**
 * Sign-in elsewhere: the social providers this node offers, and SSO found by the email's domain.
 * Both start at the API with `returnTo`, so the browser comes back here (redirect mode), never to
 * a JSON body.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Notice, Section } from '../../components/index.ts';

/** The console path a redirect-mode callback returns to. */
function returnToOf(next: string | null | undefined): string {
  if (next && /^https?:\/\//.test(next)) return next;
  if (next && next.startsWith('/console/')) return next;
  if (next && /^\/(?![/\\])/.test(next)) return `/console${next}`;
  return '/console/me';
}

export function ExternalSignIn({ next }: { next: string | null | undefined }) {
  const providers = useQuery({ queryKey: ['social-providers'], queryFn: () => unwrap(api.GET('/v1/auth/social/providers')), staleTime: 300_000 });
  const [email, setEmail] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [noSso, setNoSso] = useState(false);
  const [busy, setBusy] = useState(false);
  const returnTo = returnToOf(next);

  const sso = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setNoSso(false);
    try {
      const found = await unwrap(api.POST('/v1/auth/sso/discover', { body: { email } }));
      if (!found.sso) {
        setNoSso(true);
        return;
      }
      const start = new URL(found.startUrl, window.location.origin);
      window.location.assign(`${start.pathname}?returnTo=${encodeURIComponent(returnTo)}`);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const list = providers.data?.providers ?? [];
  return (
    <>
      {list.length > 0 ? (
        <Section title="With another account">
          <ul className="provider-list">
            {list.map((p) => (
              <li key={p.id}>
                <a className="btn btn-secondary" href={`/v1/auth/social/${encodeURIComponent(p.id)}/start?returnTo=${encodeURIComponent(returnTo)}`}>
                  Continue with {p.name}
                </a>
              </li>
            ))}
          </ul>
        </Section>
      ) : null}
      <Section title="With your organisation's single sign-on">
        <form className="form" onSubmit={(e) => void sso(e)} aria-label="Sign in with single sign-on">
          <Field label="Work email" type="email" name="sso-email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          {noSso ? <Notice tone="info">No single sign-on is set up for this email&apos;s domain: sign in with your password or a passkey.</Notice> : null}
          <ApiErrorNotice error={error} />
          <Button type="submit" busy={busy}>
            Continue with SSO
          </Button>
        </form>
      </Section>
    </>
  );
}
