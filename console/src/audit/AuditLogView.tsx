/**
 * An audit log in the console (an org's or the platform's): filters (actor, action, time), the
 * API's own cursor paging (newest first, 50 a page), each event's details, the export, and the
 * log's verification done in the browser (verify.ts).
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { ApiError } from '../api/client.ts';
import { ApiErrorNotice, Button, Dialog, Field, Notice, Section, Table, useCursorPages } from '../components/index.ts';
import { verifyLog, type VerifyResult } from './verify.ts';

export interface AuditEvent {
  id?: string;
  seq?: number;
  time?: string;
  action?: string;
  actor?: { type?: string; id?: string | null };
  target?: { type?: string; id?: string } | null;
  [key: string]: unknown;
}

interface Filters {
  actor: string;
  action: string;
  from: string;
  to: string;
}

const NO_FILTERS: Filters = { actor: '', action: '', from: '', to: '' };
const PAGE_SIZE = 50;

/** The query of the list endpoints (the API checks the action against its list and refuses an unknown one). */
export interface AuditQuery {
  limit: number;
  actor?: string;
  action?: string;
  from?: string;
  to?: string;
  cursor?: number;
}

export interface AuditLoaders {
  /** One page of the log, newest first. */
  page: (query: AuditQuery) => Promise<{ events: AuditEvent[]; nextCursor: number | null }>;
  /** The log's JSON Lines export. */
  exportText: () => Promise<string>;
}

function query(filters: Filters, cursor: number | undefined): AuditQuery {
  return {
    limit: PAGE_SIZE,
    ...(filters.actor ? { actor: filters.actor } : {}),
    ...(filters.action ? { action: filters.action } : {}),
    ...(filters.from ? { from: new Date(filters.from).toISOString() } : {}),
    ...(filters.to ? { to: new Date(filters.to).toISOString() } : {}),
    ...(cursor !== undefined ? { cursor } : {}),
  };
}

function FilterForm({ onApply }: { onApply: (f: Filters) => void }) {
  const [f, setF] = useState<Filters>(NO_FILTERS);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply(f);
  };
  return (
    <form className="filters" onSubmit={submit} aria-label="Filter events">
      <Field label="Actor id" value={f.actor} onChange={(e) => setF({ ...f, actor: e.target.value.trim() })} />
      <Field label="Action" placeholder="apikey.created" value={f.action} onChange={(e) => setF({ ...f, action: e.target.value.trim() })} />
      <Field label="From" type="datetime-local" value={f.from} onChange={(e) => setF({ ...f, from: e.target.value })} />
      <Field label="To" type="datetime-local" value={f.to} onChange={(e) => setF({ ...f, to: e.target.value })} />
      <Button type="submit">Apply filters</Button>
      <Button
        onClick={() => {
          setF(NO_FILTERS);
          onApply(NO_FILTERS);
        }}
      >
        Clear
      </Button>
    </form>
  );
}

function Verification({ exportText }: { exportText: () => Promise<string> }) {
  const [state, setState] = useState<{ busy: boolean; result?: VerifyResult; error?: unknown }>({ busy: false });
  const run = async () => {
    setState({ busy: true });
    try {
      setState({ busy: false, result: await verifyLog(exportText) });
    } catch (error) {
      setState({ busy: false, error });
    }
  };
  const r = state.result;
  return (
    <Section title="Verification" actions={<Button variant="primary" busy={state.busy} onClick={() => void run()}>Verify in this browser</Button>}>
      <p className="muted">
        Your browser downloads the export and the node's published keys, recomputes the Merkle tree of every event and checks each signed checkpoint with WebCrypto: it does not take the node's word for it.
      </p>
      <ApiErrorNotice error={state.error} title="Verification could not run" />
      {r ? (
        r.ok ? (
          <Notice tone="success" title="Verified">
            <p>
              {r.events} events and {r.checkpoints} checkpoints; the newest checkpoint (size {r.latest?.size}, {r.latest?.time}) is signed by the published key <code className="mono">{r.latest?.kid}</code>.
              {r.uncovered ? ` ${r.uncovered} newer events are not covered by a checkpoint yet.` : ''}
            </p>
          </Notice>
        ) : (
          <Notice tone="error" title="Verification failed">
            <ul className="verify-steps">
              {r.failures.map((f) => (
                <li key={f}>{f}</li>
              ))}
            </ul>
          </Notice>
        )
      ) : null}
    </Section>
  );
}

/** `load`: the log's endpoints; `exportUrl`: its JSON Lines export, for the download link. */
export function AuditLogView({ title, load, exportUrl }: { title: string; load: AuditLoaders; exportUrl: string }) {
  const [filters, setFilters] = useState<Filters>(NO_FILTERS);
  const pages = useCursorPages<number>();
  const [open, setOpen] = useState<AuditEvent | null>(null);
  const events = useQuery({ queryKey: ['audit', exportUrl, filters, pages.cursor], queryFn: () => load.page(query(filters, pages.cursor)), placeholderData: (prev) => prev });
  const refused = events.error instanceof ApiError ? events.error : null;
  return (
    <>
      <Section title={title} actions={<a className="btn btn-secondary" href={exportUrl} download="audit-export.jsonl">Export (JSON Lines)</a>}>
        <FilterForm
          onApply={(f) => {
            pages.reset();
            setFilters(f);
          }}
        />
        <ApiErrorNotice error={refused ?? events.error} />
        <Table
          caption="Events, newest first"
          rows={events.data?.events ?? []}
          rowKey={(e) => String(e.id ?? e.seq)}
          empty="No event matches."
          pagination={pages.pagination(events.data?.nextCursor)}
          columns={[
            { header: 'Time', cell: (e) => (e.time ? new Date(e.time).toLocaleString('en') : '') },
            { header: 'Action', cell: (e) => <code>{e.action}</code> },
            { header: 'Actor', cell: (e) => `${e.actor?.type ?? ''} ${e.actor?.id ?? ''}`.trim() },
            { header: 'Target', cell: (e) => (e.target ? `${e.target.type ?? ''} ${e.target.id ?? ''}` : '') },
            {
              header: 'Details',
              cell: (e) => (
                <Button onClick={() => setOpen(e)} aria-label={`Details of event ${e.seq ?? ''} ${e.action ?? ''}`}>
                  Details
                </Button>
              ),
            },
          ]}
        />
      </Section>
      <Verification exportText={load.exportText} />
      <Dialog open={open !== null} title={`Event ${open?.seq ?? ''}: ${open?.action ?? ''}`} onClose={() => setOpen(null)} actions={<Button onClick={() => setOpen(null)}>Close</Button>}>
        <pre className="event-json">{JSON.stringify(open, null, 2)}</pre>
      </Dialog>
    </>
  );
}
