/**
 * The operator area (platform operators only): the user list (search, disable or re-enable a user,
 * reset a user's second factors), the pending domain claims and their verification, the platform audit log and the trust report.
 */
import { useQuery } from '@tanstack/react-query';
import { useState } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { AuditLogView, type AuditLoaders } from '../../audit/AuditLogView.tsx';
import { verifySignedValue } from '../../audit/verify.ts';
import { ApiErrorNotice, Button, Notice, Page, RequireSession, Section, Table } from '../../components/index.ts';
import '../../styles/pages.css';
import { DomainClaims } from './DomainClaims.tsx';
import { UserList } from './UserList.tsx';

const PLATFORM_LOG: AuditLoaders = {
  page: (query) => unwrap(api.GET('/v1/admin/audit', { params: { query: query as never } })) as ReturnType<AuditLoaders['page']>,
  exportText: () => unwrap(api.GET('/v1/admin/audit/export', { parseAs: 'text' })),
};

function TrustReport() {
  const [load, setLoad] = useState(false);
  const report = useQuery({
    queryKey: ['trust-report'],
    enabled: load,
    queryFn: async () => {
      const signed = await unwrap(api.GET('/v1/admin/trust-report'));
      return { ...signed, verified: await verifySignedValue(signed.report, signed.signature.kid, signed.signature.value) };
    },
  });
  return (
    <Section title="Trust report" actions={<Button onClick={() => setLoad(true)} busy={report.isFetching}>Generate now</Button>}>
      <ApiErrorNotice error={report.error} />
      {report.data ? (
        <>
          <p>
            Generated {new Date(report.data.report.generatedAt).toLocaleString('en')}, signed with <code className="mono">{report.data.signature.kid}</code> (<a href="/v1/admin/trust-report.html">printable page</a>).
          </p>
          {report.data.verified ? (
            <Notice tone="success">Signature verified in this browser with the published key.</Notice>
          ) : (
            <Notice tone="error" title="Signature not verified">The report's signature does not verify with a published key.</Notice>
          )}
          <Table
            caption="Controls and their state"
            rows={report.data.report.controls}
            rowKey={(c) => c.control}
            columns={[
              { header: 'Control', cell: (c) => c.control },
              { header: 'State', cell: (c) => <span className={c.state === 'ok' || c.state === 'pass' ? 'badge badge-ok' : 'badge'}>{c.state}</span> },
            ]}
          />
        </>
      ) : null}
    </Section>
  );
}

export default function OperatorPage() {
  return (
    <RequireSession>
      {(me) =>
        me.isOperator ? (
          <Page title="Operator" intro="Platform tasks: accounts, domain verification, the platform log and the trust report.">
            <UserList selfId={me.id} />
            <DomainClaims />
            <AuditLogView title="Platform log" load={PLATFORM_LOG} exportUrl="/v1/admin/audit/export" />
            <TrustReport />
          </Page>
        ) : (
          <Page title="Operator">
            <Notice tone="info">This area is for the platform's operators; your account is not one.</Notice>
          </Page>
        )
      }
    </RequireSession>
  );
}
