/**
 * Email domains of an org (AUTH-9): an org admin claims a domain for one of its connections; the
 * platform operator, having checked out of band that the org holds it, marks the claim verified.
 * One org at most per verified domain. The domain rules are pure functions.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { connectionIn, iso, isoOrNull, UUID, type DomainView, type SsoDeps } from './sso-shared.ts';

// eslint-disable-next-line security/detect-unsafe-regex -- labels are bounded and input is capped at 253 first
const DOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

/** A domain as an org claims it: lowercase ASCII (IDNA), no trailing dot, at least two labels. */
export function normalizeDomain(raw: string): string {
  const trimmed = raw.normalize('NFKC').trim().toLowerCase().replace(/\.$/, '');
  let ascii: string;
  try {
    if (!/^[^/:@?#\s[\]\\]+$/.test(trimmed)) throw new Error('not a host');
    ascii = new URL(`http://${trimmed}`).hostname;
  } catch {
    throw new AppError('VALIDATION_FAILED', 'body.domain: not a domain name');
  }
  if (ascii.length > 253 || !DOMAIN_RE.test(ascii) || /^[0-9.]+$/.test(ascii)) throw new AppError('VALIDATION_FAILED', 'body.domain: not a domain name');
  return ascii;
}

/** The domain of a normalized email address (what a domain claim is matched against). */
export const domainOfEmail = (email: string): string => email.slice(email.lastIndexOf('@') + 1);

interface DomainRow {
  id: string;
  domain: string;
  connection_id: string;
  verified_at: Date | string | null;
  created_at: Date | string;
}

export const domainView = (r: DomainRow): DomainView => ({
  id: r.id,
  domain: r.domain,
  connectionId: r.connection_id,
  verified: r.verified_at !== null,
  verifiedAt: isoOrNull(r.verified_at),
  createdAt: iso(r.created_at),
});

export function createSsoDomains(deps: SsoDeps) {
  const { db, audit, now } = deps;

  async function listDomains(orgId: string): Promise<DomainView[]> {
    const { rows } = await db.withTenant(orgId, (tx) =>
      tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>('select id, domain, connection_id, verified_at, created_at from sso_domains order by domain'),
    );
    return rows.map(domainView);
  }

  async function claimDomain(orgId: string, rawDomain: string, connectionId: string): Promise<DomainView> {
    const domain = normalizeDomain(rawDomain);
    const id = randomUUID();
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.claimed', target: { type: 'sso_domain', id }, data: { domain, connection: connectionId } });
    return db.withTenant(orgId, async (tx) => {
      await connectionIn(tx, connectionId);
      const exists = await tx.query('select 1 from sso_domains where domain = $1', [domain]);
      if (exists.rowCount > 0) throw new AppError('SSO_DOMAIN_EXISTS');
      const inserted = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
        'insert into sso_domains (id, tenant_id, connection_id, domain) values ($1, $2, $3, $4) returning id, domain, connection_id, verified_at, created_at',
        [id, orgId, connectionId, domain],
      );
      await audit.append(tx, event);
      const row = inserted.rows[0];
      if (!row) throw new AppError('INTERNAL');
      return domainView(row);
    });
  }

  async function removeDomain(orgId: string, id: string): Promise<void> {
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.removed', target: { type: 'sso_domain', id } });
    await db.withTenant(orgId, async (tx) => {
      const deleted = await tx.query('delete from sso_domains where id = $1', [id]);
      if (deleted.rowCount === 0) throw new AppError('NOT_FOUND', 'No such domain.');
      await audit.append(tx, event);
    });
  }

  /**
   * The platform operator, having checked out of band that the org holds the domain (DNS record,
   * contract), marks its claim verified. One org at most per verified domain.
   */
  async function verifyDomain(operatorId: string, orgId: string, rawDomain: string): Promise<DomainView> {
    const domain = normalizeDomain(rawDomain);
    if (!UUID.test(orgId)) throw new AppError('NOT_FOUND', 'No such domain claim.');
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.verified', target: { type: 'sso_domain', id: domain }, data: { domain } });
    try {
      return await db.withTenant(orgId, async (tx) => {
        const claim = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
          'select id, domain, connection_id, verified_at, created_at from sso_domains where domain = $1 for update',
          [domain],
        );
        const row = claim.rows[0];
        if (!row) throw new AppError('NOT_FOUND', 'No such domain claim.');
        if (row.verified_at !== null) return domainView(row);
        const updated = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
          'update sso_domains set verified_at = $2, verified_by = $3 where id = $1 returning id, domain, connection_id, verified_at, created_at',
          [row.id, new Date(now()), operatorId],
        );
        await audit.append(tx, event);
        const out = updated.rows[0];
        if (!out) throw new AppError('INTERNAL');
        return domainView(out);
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new AppError('SSO_DOMAIN_TAKEN');
      throw err;
    }
  }

  return { listDomains, claimDomain, removeDomain, verifyDomain };
}
