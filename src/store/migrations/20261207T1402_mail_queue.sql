-- why: outgoing mail (AUTH-2) leaves the request path. A request only writes the message here
-- (in its own transaction where it has one) and answers; a sender on every node claims due rows,
-- sends them, and retries with exponential backoff. The answer no longer depends on the mail
-- (the time an SMTP send takes told whether an address had an account), and a message survives
-- an SMTP outage or a restart.
--
-- Platform data like users: a message belongs to no tenant, so the table has no tenant_id and no
-- row level security; the application role may read, write and prune it. The message itself
-- (recipient, subject, text: it carries single-use codes) is sealed under the platform data key,
-- bound to the row id (body_sealed, a declared sealed column), and wiped once the message is
-- sent or given up; only the kind and a masked recipient stay readable for the operator.
create table mail_queue (
  id uuid primary key,
  kind text not null,
  -- `a***@example.com`: what the operator sees, never the full address.
  to_masked text not null,
  -- null once sent or given up: the codes it carried have no reason to outlive the delivery.
  body_sealed text,
  status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
  attempts integer not null default 0 check (attempts >= 0),
  next_attempt_at timestamptz not null,
  -- A sender holds a claimed row until then; a node that died mid-send releases it this way.
  locked_until timestamptz,
  -- The last failure's code (ECONNECTION, EAUTH, a reply code...), never a message text.
  last_error text,
  created_at timestamptz not null,
  sent_at timestamptz,
  updated_at timestamptz not null,
  check ((status = 'pending') = (body_sealed is not null))
);
-- The senders' scan: due pending rows, oldest first.
create index mail_queue_due_idx on mail_queue (next_attempt_at) where status = 'pending';
-- Pruning sent and failed rows after the retention.
create index mail_queue_done_idx on mail_queue (updated_at) where status <> 'pending';

revoke all on mail_queue from gatehouse_app;
grant select, insert, update, delete on mail_queue to gatehouse_app;
