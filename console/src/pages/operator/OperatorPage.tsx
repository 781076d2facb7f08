import { Notice, Page, RequireSession } from '../../components/index.ts';

/** Placeholder: this area of the console is being built. */
export default function OperatorPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="Operator" intro="Users, domain verification, the platform audit log and the trust report.">
          <Notice tone="info">This part of the console is not built yet; the API serves it today (see the API reference).</Notice>
        </Page>
      )}
    </RequireSession>
  );
}
