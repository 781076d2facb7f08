/**
 * Invitations (TEN-1): emailed, stored as a SHA-256 hash, expiring, single use, bound to the
 * invited address, revocable.
 *
 * Token: `ghi_` + the org id (16 bytes, base64url, 22 characters) + 43 characters of base64url
 * secret (32 random bytes). The org id lets acceptance run inside that org's tenant context,
 * so no query ever looks across tenants for a token.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { normalizeEmail, type MailQueue } from '../identity/index.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import { lockOrg, type TenancyDeps } from './org-core.ts';
import { canGrant, isRole, type Role } from './permissions.ts';

const PREFIX = 'ghi_';
const TOKEN_RE = /^ghi_([A-Za-z0-9_-]{22})([A-Za-z0-9_-]{43})$/;

export interface InvitationView {
  id: string;
  email: string;
  role: Role;
  status: 'pending' | 'accepted' | 'revoked' | 'expired';
  invitedBy: string;
  expiresAt: string;
  createdAt: string;
}

interface InvitationRow {
  id: string;
  email: string;
  role: string;
  invited_by: string;
  expires_at: Date;
  accepted_at: Date | null;
  revoked_at: Date | null;
  created_at: Date;
}

const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());
const hashOf = (token: string): string => createHash('sha256').update(token, 'utf8').digest('base64url');

function orgIdToText(orgId: string): string {
  return Buffer.from(orgId.replace(/-/g, ''), 'hex').toString('base64url');
}

function orgIdFromText(text: string): string | null {
  const hex = Buffer.from(text, 'base64url').toString('hex');
  if (hex.length !== 32) return null;
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function view(r: InvitationRow, now: number): InvitationView {
  const status = r.accepted_at ? 'accepted' : r.revoked_at ? 'revoked' : new Date(r.expires_at).getTime() <= now ? 'expired' : 'pending';
  if (!isRole(r.role)) throw new Error('a stored role is outside the enum');
  return { id: r.id, email: r.email, role: r.role, status, invitedBy: r.invited_by, expiresAt: iso(r.expires_at), createdAt: iso(r.created_at) };
}

const COLUMNS = 'id, email, role, invited_by, expires_at, accepted_at, revoked_at, created_at';

export function createInvitations(deps: TenancyDeps & { mailer: MailQueue; origin: string }) {
  const { db, evictOrg, limits, now, mailer, origin, audit } = deps;

  async function orgName(database: Db, orgId: string): Promise<string> {
    const { rows } = await database.withTenant(orgId, (tx) => tx.query<{ name: string }>('select name from orgs'));
    return rows[0]?.name ?? '';
  }

  return {
    async create(orgId: string, actorId: string, actorRole: Role, rawEmail: string, role: Role): Promise<InvitationView> {
      const email = normalizeEmail(rawEmail);
      if (!canGrant(actorRole, role)) throw new AppError('ROLE_ABOVE_OWN');
      const token = PREFIX + orgIdToText(orgId) + randomBytes(32).toString('base64url');
      const id = randomUUID();
      const expiresAt = new Date(now() + limits.invitationTtlMs);
      // The invited address is personal data: the event names the invitation, not the address.
      const event = await audit.prepare({ tenantId: orgId, action: 'invitation.created', target: { type: 'invitation', id }, data: { role } });
      // The mail is sealed first (sealing may use the database) and queued in the invitation's
      // transaction: both exist, or neither.
      const name = await orgName(db, orgId);
      const mail = await mailer.prepare({
        to: email,
        kind: 'invitation',
        subject: `You are invited to ${name} on Gatehouse`,
        text:
          `You have been invited to join the organization "${name}" as ${role}.\n\n` +
          `Sign in with this email address and accept at:\n\n` +
          `${origin}/console/orgs/accept?token=${encodeURIComponent(token)}\n\n` +
          `Or, through the API, signed in as this address:\n\n` +
          `POST ${origin}/v1/invitations/accept\n{"token": "${token}"}\n\n` +
          `The invitation expires at ${expiresAt.toISOString()} and works once. If you did not expect it, ignore this message.\n`,
      });
      const invitation = await db.withTenant(orgId, async (tx) => {
        await lockOrg(tx);
        const member = await tx.query('select 1 from memberships m join users u on u.id = m.user_id where u.email = $1', [email]);
        if (member.rowCount > 0) throw new AppError('ALREADY_MEMBER');
        // One live link per address: a new invitation replaces the pending one.
        await tx.query('update invitations set revoked_at = now() where email = $1 and accepted_at is null and revoked_at is null', [email]);
        const pending = await tx.query<{ n: number }>('select count(*)::int as n from invitations where accepted_at is null and revoked_at is null and expires_at > $1', [
          new Date(now()),
        ]);
        if ((pending.rows[0]?.n ?? 0) >= limits.maxPendingInvitations) {
          throw new AppError('TENANCY_LIMIT_REACHED', `An organization may have at most ${limits.maxPendingInvitations} open invitations.`);
        }
        const { rows } = await tx.query<InvitationRow>(
          `insert into invitations (id, tenant_id, email, role, token_hash, invited_by, expires_at)
           values ($1, $2, $3, $4, $5, $6, $7) returning ${COLUMNS}`,
          [id, orgId, email, role, hashOf(token), actorId, expiresAt],
        );
        const row = rows[0];
        if (!row) throw new Error('insert returned no row');
        await audit.append(tx, event);
        await mailer.enqueue(tx, mail);
        return view(row, now());
      });
      mailer.wake();
      return invitation;
    },

    async list(orgId: string): Promise<InvitationView[]> {
      const { rows } = await db.withTenant(orgId, (tx) => tx.query<InvitationRow>(`select ${COLUMNS} from invitations order by created_at desc, id limit 500`));
      return rows.map((r) => view(r, now()));
    },

    async revoke(orgId: string, invitationId: string): Promise<void> {
      const event = await audit.prepare({ tenantId: orgId, action: 'invitation.revoked', target: { type: 'invitation', id: invitationId } });
      const { rowCount } = await db.withTenant(orgId, async (tx) => {
        const revoked = await tx.query('update invitations set revoked_at = now() where id = $1 and accepted_at is null and revoked_at is null', [invitationId]);
        if (revoked.rowCount > 0) await audit.append(tx, event);
        return revoked;
      });
      if (rowCount === 0) throw new AppError('NOT_FOUND');
    },

    /** Accepts with the signed-in user, whose verified email must be the invited one. */
    async accept(userId: string, token: string): Promise<{ orgId: string; name: string; role: Role }> {
      const m = TOKEN_RE.exec(token);
      const orgId = m?.[1] ? orgIdFromText(m[1]) : null;
      if (!orgId) throw new AppError('INVITATION_INVALID');
      const user = await db.query<{ email: string; email_verified_at: Date | null; status: string }>('select email, email_verified_at, status from users where id = $1', [userId]);
      const me = user.rows[0];
      if (!me || me.status !== 'active') throw new AppError('UNAUTHENTICATED');
      // Refuse a forged or spent token before anything is written: preparing the audit event seals
      // fields with the org's data key, which a token for a missing or deleted org must not create.
      const probe = await db.withTenant(orgId, (tx) =>
        tx.query('select 1 from invitations i join orgs o on o.tenant_id = i.tenant_id where i.token_hash = $1 and i.accepted_at is null and i.revoked_at is null', [hashOf(token)]),
      );
      if (probe.rowCount === 0) throw new AppError('INVITATION_INVALID');
      const event = await audit.prepare({ tenantId: orgId, action: 'invitation.accepted', target: { type: 'user', id: userId } });
      const accepted = await db.withTenant(orgId, async (tx) => {
        const org = await tx.query<{ name: string }>('select name from orgs for update');
        if (org.rowCount === 0) throw new AppError('INVITATION_INVALID');
        const { rows } = await tx.query<InvitationRow>(`select ${COLUMNS} from invitations where token_hash = $1`, [hashOf(token)]);
        const inv = rows[0];
        if (!inv || inv.accepted_at || inv.revoked_at || new Date(inv.expires_at).getTime() <= now()) throw new AppError('INVITATION_INVALID');
        if (!me.email_verified_at || me.email !== inv.email) throw new AppError('INVITATION_EMAIL_MISMATCH');
        if (!isRole(inv.role)) throw new Error('a stored role is outside the enum');
        const existing = await tx.query('select 1 from memberships where user_id = $1', [userId]);
        if (existing.rowCount > 0) throw new AppError('ALREADY_MEMBER');
        const used = await tx.query('update invitations set accepted_at = now(), accepted_by = $2 where id = $1 and accepted_at is null and revoked_at is null', [inv.id, userId]);
        if (used.rowCount !== 1) throw new AppError('INVITATION_INVALID');
        await tx.query('insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)', [orgId, userId, inv.role]);
        // Invited back: an earlier removal no longer stands in the way of the org's SSO.
        await tx.query('delete from member_removals where user_id = $1', [userId]);
        await audit.append(tx, event, { invitation: inv.id, role: inv.role });
        return { orgId, name: org.rows[0]?.name ?? '', role: inv.role };
      });
      await evictOrg(orgId);
      return accepted;
    },
  };
}

export type Invitations = ReturnType<typeof createInvitations>;
