/** Audit: the current org's log with filters and paging, each event's details, export and in-browser verification. */
import { AuditLogView, type AuditLoaders } from '../../audit/AuditLogView.tsx';
import { api, unwrap } from '../../api/client.ts';
import { useEffectiveScope } from '../../api/scope.ts';
import { Page, RequireSession, ScopePicker } from '../../components/index.ts';
import '../../styles/pages.css';

/** The org's log through the typed client (the API refuses an unknown action with its code). */
function orgLog(org: string): AuditLoaders {
  return {
    page: (query) => unwrap(api.GET('/v1/orgs/{org}/audit', { params: { path: { org }, query: query as never } })) as ReturnType<AuditLoaders['page']>,
    exportText: () => unwrap(api.GET('/v1/orgs/{org}/audit/export', { params: { path: { org } }, parseAs: 'text' })),
  };
}

export default function AuditPage() {
  const scope = useEffectiveScope();
  return (
    <RequireSession>
      {() => (
        <Page title="Audit" intro="Everything that changed in the organisation, in a log that is hashed into a Merkle tree and signed, so any change to it shows.">
          <ScopePicker />
          {scope.org ? <AuditLogView key={scope.org} title="The organisation's log" load={orgLog(scope.org)} exportUrl={`/v1/orgs/${scope.org}/audit/export`} /> : null}
        </Page>
      )}
    </RequireSession>
  );
}
