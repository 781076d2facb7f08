import { Notice, Page, RequireSession } from '../../components/index.ts';

/** Placeholder: this area of the console is being built. */
export default function ApiKeysPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="API keys" intro="Create, list and revoke the API keys of a workspace.">
          <Notice tone="info">This part of the console is not built yet; the API serves it today (see the API reference).</Notice>
        </Page>
      )}
    </RequireSession>
  );
}
