import { Notice, Page, RequireSession } from '../../components/index.ts';

/** Placeholder: this area of the console is being built. */
export default function AuditPage() {
  return (
    <RequireSession>
      {() => (
        <Page title="Audit" intro="The organisation's audit log, its verification status and export.">
          <Notice tone="info">This part of the console is not built yet; the API serves it today (see the API reference).</Notice>
        </Page>
      )}
    </RequireSession>
  );
}
