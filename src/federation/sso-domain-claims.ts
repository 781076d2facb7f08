/**
 * The operators' list of pending email-domain claims (AUTH-9): every org's claims not yet
 * verified, oldest first, keyset-paged on (created_at, id), with the org's name, so the operator
 * picks the claim to check out of band and verify. Read outside any tenant context through the
 * review policies of migration 20261207T2337, which let rows through only while this transaction
 * set gatehouse.sso_claims_review; the route's operator check (platform.sso.verify) comes first.
 */
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { iso } from './sso-shared.ts';

export const CLAIM_CURSOR_RE = /^([0-9]{1,17})_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;

export interface PendingClaim {
  id: string;
  orgId: string;
  orgName: string;
  domain: string;
  connectionId: string;
  createdAt: string;
}

const LIST_PENDING = `select d.id, d.tenant_id, o.name as org_name, d.domain, d.connection_id, d.created_at,
       (extract(epoch from d.created_at) * 1000000)::bigint::text as created_us
  from sso_domains d
  join orgs o on o.tenant_id = d.tenant_id
 where d.verified_at is null
   and ($1::bigint is null or (d.created_at, d.id) > (timestamptz 'epoch' + $1::bigint * interval '1 microsecond', $2::uuid))
 order by d.created_at, d.id
 limit $3`;

/** One page of the pending claims; `nextCursor` is null on the last page. */
export async function listPendingClaims(db: Db, query: { cursor?: string | undefined; limit: number }): Promise<{ claims: PendingClaim[]; nextCursor: string | null }> {
  const after = query.cursor === undefined ? null : CLAIM_CURSOR_RE.exec(query.cursor);
  if (query.cursor !== undefined && !after) throw new AppError('VALIDATION_FAILED', 'querystring.cursor: not a cursor this list gave');
  const rows = await db.transaction(async (tx) => {
    await tx.query("select set_config('gatehouse.sso_claims_review', 'on', true)");
    const result = await tx.query<{ id: string; tenant_id: string; org_name: string; domain: string; connection_id: string; created_at: Date | string; created_us: string }>(LIST_PENDING, [
      after?.[1] ?? null,
      after?.[2] ?? null,
      query.limit + 1,
    ]);
    return result.rows;
  });
  const page = rows.slice(0, query.limit);
  const last = page[page.length - 1];
  return {
    claims: page.map((r) => ({ id: r.id, orgId: r.tenant_id, orgName: r.org_name, domain: r.domain, connectionId: r.connection_id, createdAt: iso(r.created_at) })),
    nextCursor: rows.length > query.limit && last ? `${last.created_us}_${last.id}` : null,
  };
}
