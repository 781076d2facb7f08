/** Audit: the current org's log with filters and paging, each event's details, export and in-browser verification. */
import { AuditLogView } from '../../audit/AuditLogView.tsx';
import { useEffectiveScope } from '../../api/scope.ts';
import { Page, RequireSession, ScopePicker } from '../../components/index.ts';
import '../../styles/pages.css';

export default function AuditPage() {
  const scope = useEffectiveScope();
  return (
    <RequireSession>
      {() => (
        <Page title="Audit" intro="Everything that changed in the organisation, in a log that is hashed into a Merkle tree and signed, so any change to it shows.">
          <ScopePicker />
          {scope.org ? <AuditLogView key={scope.org} title="The organisation's log" listUrl={`/v1/orgs/${scope.org}/audit`} exportUrl={`/v1/orgs/${scope.org}/audit/export`} /> : null}
        </Page>
      )}
    </RequireSession>
  );
}
