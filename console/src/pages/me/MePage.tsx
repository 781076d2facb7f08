/** Me: the signed-in account. */
import { Page, RequireSession, Section } from '../../components/index.ts';

export default function MePage() {
  return (
    <RequireSession>
      {(me) => (
        <Page title="Your account">
          <Section title="Profile">
            <dl className="facts">
              <dt>Email</dt>
              <dd>{me.email}</dd>
              <dt>Email verified</dt>
              <dd>{me.emailVerified ? 'Yes' : 'No'}</dd>
              <dt>Account created</dt>
              <dd>{new Date(me.createdAt).toLocaleString('en')}</dd>
            </dl>
          </Section>
        </Page>
      )}
    </RequireSession>
  );
}
