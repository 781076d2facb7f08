import { Notice, Page, RequireSession } from '../../components/index.ts';

/** Placeholder: this area of the console is being built. */
export default function GatewayPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="Gateway" intro="Provider credentials, allowed models and aliases, usage and budgets.">
          <Notice tone="info">This part of the console is not built yet; the API serves it today (see the API reference).</Notice>
        </Page>
      )}
    </RequireSession>
  );
}
