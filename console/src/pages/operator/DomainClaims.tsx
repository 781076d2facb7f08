/**
 * Domain verification for operators: the orgs' pending domain claims (GET /v1/admin/domain-claims,
 * paged with the API's cursors), each with a Choose action that fills the form, and the form that
 * verifies one (its org id and domain can still be typed in). A verified claim leaves the list.
 */
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Notice, Section, Table, useCursorPages } from '../../components/index.ts';

const CLAIMS_KEY = ['admin', 'domain-claims'];

export function DomainClaims() {
  const pages = useCursorPages<string>();
  const claims = useQuery({
    queryKey: [...CLAIMS_KEY, pages.cursor],
    queryFn: () => unwrap(api.GET('/v1/admin/domain-claims', { params: { query: { status: 'pending', limit: 20, ...(pages.cursor ? { cursor: pages.cursor } : {}) } } })),
  });
  const queryClient = useQueryClient();
  const [orgId, setOrgId] = useState('');
  const [domain, setDomain] = useState('');
  const [state, setState] = useState<{ busy: boolean; error: unknown; done: string | null }>({ busy: false, error: null, done: null });
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setState({ busy: true, error: null, done: null });
    try {
      const verified = await unwrap(api.POST('/v1/admin/sso/domains/verify', { body: { orgId: orgId.trim(), domain: domain.trim() } }));
      setState({ busy: false, error: null, done: `${verified.domain} verified.` });
      await queryClient.invalidateQueries({ queryKey: CLAIMS_KEY });
    } catch (error) {
      setState({ busy: false, error, done: null });
    }
  };
  return (
    <Section title="Domain verification">
      <p className="muted">Verify a domain only after checking out of band (e.g. a DNS record) that the organisation holds it.</p>
      <ApiErrorNotice error={claims.error} />
      <Table
        caption="Pending domain claims, oldest first"
        rows={claims.data?.claims ?? []}
        rowKey={(c) => c.id}
        empty="No claim is waiting."
        pagination={pages.pagination(claims.data?.nextCursor)}
        columns={[
          { header: 'Domain', cell: (c) => c.domain },
          { header: 'Organisation', cell: (c) => c.orgName },
          { header: 'Organisation id', cell: (c) => <code className="mono">{c.orgId}</code> },
          { header: 'Claimed', cell: (c) => new Date(c.createdAt).toLocaleString('en') },
          {
            header: 'Actions',
            cell: (c) => (
              <Button
                onClick={() => {
                  setOrgId(c.orgId);
                  setDomain(c.domain);
                  setState({ busy: false, error: null, done: null });
                }}
                aria-label={`Choose ${c.domain} of ${c.orgName}`}
              >
                Choose
              </Button>
            ),
          },
        ]}
      />
      <form className="form" onSubmit={(e) => void submit(e)} aria-label="Verify domain">
        <Field label="Organisation id" required value={orgId} onChange={(e) => setOrgId(e.target.value)} />
        <Field label="Domain to verify" required value={domain} onChange={(e) => setDomain(e.target.value)} />
        <ApiErrorNotice error={state.error} />
        {state.done ? <Notice tone="success">{state.done}</Notice> : null}
        <Button type="submit" variant="primary" busy={state.busy}>
          Verify domain
        </Button>
      </form>
    </Section>
  );
}
