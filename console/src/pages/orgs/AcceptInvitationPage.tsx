/**
 * Accept an invitation with the token from the email, signed in as the invited address. The
 * mail's link (?token=) fills the form; the token is wiped from the address once read (after the
 * sign-in a signed-out visitor is sent through first, which brings them back with it).
 */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { useLinkToken } from '../../api/link-token.ts';
import { setScope } from '../../api/scope.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, RequireSession, Section } from '../../components/index.ts';

function AcceptForm() {
  const linked = useLinkToken();
  const [token, setToken] = useState(linked);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [joined, setJoined] = useState<{ name: string; role: string } | null>(null);
  const queryClient = useQueryClient();
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const { org } = await unwrap(api.POST('/v1/invitations/accept', { body: { token: token.trim() } }));
      setScope(org.id);
      await queryClient.invalidateQueries({ queryKey: ['orgs'] });
      setJoined(org);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section title="Invitation">
      {joined ? (
        <Notice tone="success" title={`You joined ${joined.name} as ${joined.role}.`}>
          <p>
            <Link to="/orgs">Open Orgs & workspaces</Link>
          </p>
        </Notice>
      ) : (
        <form className="form" onSubmit={(e) => void submit(e)} aria-label="Accept an invitation">
          <Field label="Invitation token" required autoComplete="off" value={token} onChange={(e) => setToken(e.target.value)} />
          <ApiErrorNotice error={error} title="Invitation refused" />
          <Button type="submit" variant="primary" busy={busy}>
            Accept invitation
          </Button>
        </form>
      )}
    </Section>
  );
}

export default function AcceptInvitationPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="Accept an invitation" intro="Open the link of the invitation email, or paste its token. You must be signed in with the invited address.">
          <AcceptForm />
        </Page>
      )}
    </RequireSession>
  );
}
