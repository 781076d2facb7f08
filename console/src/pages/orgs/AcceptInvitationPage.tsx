/** Accept an invitation with the token from the email (or the link's ?token=), signed in as the invited address. */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { Link, useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { setScope } from '../../api/scope.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, RequireSession, Section } from '../../components/index.ts';

export default function AcceptInvitationPage() {
  const [params] = useSearchParams();
  const [token, setToken] = useState(params.get('token') ?? '');
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
    <RequireSession>
      {() => (
        <Page title="Accept an invitation" intro="Paste the token from the invitation email. You must be signed in with the invited address.">
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
        </Page>
      )}
    </RequireSession>
  );
}
