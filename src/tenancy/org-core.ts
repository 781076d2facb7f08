/**
 * What the organization services share (TEN-1): the views they return, their dependencies, and the
 * row lock every membership change takes first, so concurrent changes serialise: no lost update,
 * and the owner count read inside the transaction is the one the change commits against (an org
 * can never end without an owner).
 */
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import { isRole, type Role } from './permissions.ts';

export interface OrgView {
  id: string;
  name: string;
  role: Role;
  requireMfa: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface MemberView {
  userId: string;
  email: string;
  role: Role;
  joinedAt: string;
}

export interface TenancyDeps {
  db: Db;
  /** Every change is appended to the org's audit log in the same transaction. */
  audit: AuditLog;
  keyring: Keyring;
  /** Evicts cached authority for an org on every node; called after the change commits. */
  evictOrg: (orgId: string) => Promise<void>;
  limits: { maxOrgsPerUser: number; maxWorkspacesPerOrg: number; maxPendingInvitations: number; invitationTtlMs: number };
  now: () => number;
}

export const iso = (v: unknown): string => (v instanceof Date ? v.toISOString() : new Date(String(v)).toISOString());

export function roleOf(value: unknown): Role {
  if (!isRole(value)) throw new Error('a stored role is outside the enum');
  return value;
}

/** Locks the org row for the rest of the transaction; NOT_FOUND when it is gone. */
export async function lockOrg(tx: Queryable): Promise<void> {
  const { rowCount } = await tx.query('select tenant_id from orgs for update');
  if (rowCount === 0) throw new AppError('NOT_FOUND');
}

export async function memberRole(tx: Queryable, userId: string): Promise<Role | null> {
  const { rows } = await tx.query<{ role: string }>('select role from memberships where user_id = $1', [userId]);
  return rows[0] ? roleOf(rows[0].role) : null;
}

export async function ownerCount(tx: Queryable): Promise<number> {
  const { rows } = await tx.query<{ n: number }>("select count(*)::int as n from memberships where role = 'owner'");
  return rows[0]?.n ?? 0;
}

/** Re-reads the actor's role under the lock: the cached one may predate a concurrent change. */
export async function actorRole(tx: Queryable, actorId: string): Promise<Role> {
  const role = await memberRole(tx, actorId);
  if (role === null) throw new AppError('NOT_FOUND');
  return role;
}
