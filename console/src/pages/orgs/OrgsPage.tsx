import { Notice, Page, RequireSession } from '../../components/index.ts';

/** Placeholder: this area of the console is being built. */
export default function OrgsPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="Orgs & workspaces" intro="Create organisations and workspaces, switch between them, manage settings, members, roles, invitations and ownership.">
          <Notice tone="info">This part of the console is not built yet; the API serves it today (see the API reference).</Notice>
        </Page>
      )}
    </RequireSession>
  );
}
