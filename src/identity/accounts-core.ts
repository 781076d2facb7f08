/**
 * What the parts of accounts share (AUTH-1, AUTH-2, AUTH-5): the user row and its public view, the
 * email rule, the password policy and Argon2 parameters from config, the sign-in throttle, user
 * lookups, single-use email tokens, and the per-address mail limit.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Logger } from 'pino';
import type { DeviceSighting } from './devices.ts';
import type { IdentityAudit } from './identity-audit.ts';
import type { Mailer } from './mailer.ts';
import type { Mfa, MfaChallenge } from './mfa.ts';
import { checkNewPassword, DEFAULT_PASSWORD_POLICY, type Argon2Params, type PasswordPolicy } from './passwords.ts';
import { hashToken, type IssuedTokens, type Sessions } from './sessions.ts';
import { accountKey, createLoginThrottle } from './throttle.ts';

export interface AccountsDeps {
  db: Db;
  kv: Kv;
  keyring: Keyring;
  sessions: Sessions;
  mfa: Mfa;
  mailer: Mailer;
  config: Config;
  logger: Logger;
  now: () => number;
  /** Absolute base URL for links in mail. */
  publicOrigin: string;
  /** What other features do when an account is deleted (registered after creation). */
  lifecycle?: AccountLifecycle;
  /** Appends an account event to the platform audit log. */
  audit?: IdentityAudit;
}

export type { IdentityAudit } from './identity-audit.ts';

/**
 * Hooks run around account deletion: `check` may refuse it (nothing is changed yet), `cleanup`
 * removes what the user held elsewhere once the account is gone. Tenancy registers both (the
 * last owner of an org cannot delete the account; memberships go with it).
 */
export interface AccountLifecycle {
  check: ((userId: string) => Promise<void>)[];
  cleanup: ((userId: string) => Promise<void>)[];
  /**
   * Run once something (a password, a provider, a passkey) proved the user, before a session or a
   * second step: may refuse the sign-in (enterprise SSO: "this org requires SSO").
   */
  signInPolicy?: ((userId: string, method: string) => Promise<void>)[];
}

export interface UserRow {
  id: string;
  email: string;
  email_verified_at: Date | string | null;
  password_hash: string | null;
  status: 'active' | 'disabled' | 'deleted';
  is_operator: boolean;
  created_at: Date | string;
}

export interface PublicUser {
  id: string;
  email: string;
  emailVerified: boolean;
  isOperator: boolean;
  createdAt: string;
}

/** A finished sign-in. */
export interface SignedIn {
  tokens: IssuedTokens;
  device: DeviceSighting;
  user: PublicUser;
}

/** A correct password of a user with a second factor: the sign-in continues at /v1/auth/mfa/verify. */
export interface SecondFactorRequired extends MfaChallenge {
  mfaRequired: true;
}

// Each repeated label starts after a mandatory dot and input is capped at 254 characters first.
// eslint-disable-next-line security/detect-unsafe-regex
const EMAIL_RE = /^[^\s@<>(),;:"[\]\\]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

/** Lowercased, NFKC-normalised email, or a VALIDATION_FAILED error. */
export function normalizeEmail(raw: string): string {
  const email = raw.normalize('NFKC').trim().toLowerCase();
  if (email.length > 254 || !EMAIL_RE.test(email)) throw new AppError('VALIDATION_FAILED', 'body.email: not a valid email address');
  return email;
}

export function iso(v: Date | string | null): string | null {
  return v === null ? null : (v instanceof Date ? v : new Date(v)).toISOString();
}

export function publicUser(u: UserRow): PublicUser {
  return { id: u.id, email: u.email, emailVerified: u.email_verified_at !== null, isOperator: u.is_operator, createdAt: iso(u.created_at) ?? '' };
}

/**
 * The sign-in lookup of a user: the row and, in the same statement, whether a second factor is
 * active (a confirmed TOTP factor or a passkey, as `mfa.hasActiveFactor` decides).
 */
export const SIGN_IN_USER = `select u.id, u.email, u.email_verified_at, u.password_hash, u.status, u.is_operator, u.created_at,
         (exists (select 1 from mfa_factors f where f.user_id = u.id and f.confirmed_at is not null and f.deleted_at is null)
           or exists (select 1 from passkeys p where p.user_id = u.id)) as has_factor
    from users u`;

/** The services and helpers every part of accounts is built on. */
export function createAccountsCore(deps: AccountsDeps) {
  const note: IdentityAudit = deps.audit ?? (async () => undefined);
  const { db, kv, config, now } = deps;
  const argon2: Argon2Params = { memoryKiB: config.auth.argon2MemoryKiB, timeCost: config.auth.argon2TimeCost, parallelism: config.auth.argon2Parallelism };
  const policy: PasswordPolicy = {
    ...DEFAULT_PASSWORD_POLICY,
    minLength: config.auth.passwordMinLength,
    maxLength: config.auth.passwordMaxLength,
    minStrengthScore: config.auth.passwordMinStrength as PasswordPolicy['minStrengthScore'],
    breachCheck: config.auth.breachCheck,
    breachRangeUrl: config.auth.breachRangeUrl,
  };
  const throttle = createLoginThrottle(kv, db, { freeAttempts: config.auth.throttleFreeAttempts, lockoutThreshold: config.auth.lockoutThreshold, lockoutSeconds: config.auth.lockoutSeconds }, now);
  const tokenTtlMs = config.auth.emailTokenTtlSeconds * 1000;

  /**
   * At most one mail of a kind per address per minute, so the public sign-up and reset endpoints
   * cannot be used to flood someone's inbox. The caller's answer does not change either way.
   */
  async function mayMail(kind: string, email: string): Promise<boolean> {
    return kv.setIfAbsent(`auth:mail:${kind}:${accountKey(email)}`, '1', 60_000);
  }

  async function acceptablePassword(password: string, userInputs: string[]): Promise<void> {
    const verdict = await checkNewPassword(password, policy, { userInputs });
    if (!verdict.ok) throw new AppError(verdict.problem, verdict.message);
  }

  async function userByEmail(email: string): Promise<UserRow | undefined> {
    return (await db.query<UserRow>("select id, email, email_verified_at, password_hash, status, is_operator, created_at from users where email = $1 and status <> 'deleted'", [email])).rows[0];
  }

  /** The sign-in lookup: the user and, in the same statement, whether a second factor is active (as `mfa.hasActiveFactor`). */
  async function signInUserByEmail(email: string): Promise<(UserRow & { has_factor: boolean }) | undefined> {
    return (
      await db.query<UserRow & { has_factor: boolean }>(
        `${SIGN_IN_USER} where u.email = $1 and u.status <> 'deleted'`,
        [email],
      )
    ).rows[0];
  }

  async function userById(id: string): Promise<UserRow | undefined> {
    return (await db.query<UserRow>("select id, email, email_verified_at, password_hash, status, is_operator, created_at from users where id = $1 and status <> 'deleted'", [id])).rows[0];
  }

  async function issueEmailToken(userId: string | null, purpose: 'verify-email' | 'password-reset' | 'setup', ttlMs: number): Promise<string> {
    const prefix = purpose === 'verify-email' ? 'ghv_' : purpose === 'password-reset' ? 'ghp_' : 'ghs_';
    const token = prefix + randomBytes(32).toString('base64url');
    // A new token of the same purpose voids the earlier ones.
    if (userId) await db.query('update email_tokens set used_at = $3 where user_id = $1 and purpose = $2 and used_at is null', [userId, purpose, new Date(now())]);
    await db.query('insert into email_tokens (id, user_id, purpose, token_hash, expires_at) values ($1, $2, $3, $4, $5)', [
      randomUUID(),
      userId,
      purpose,
      hashToken(token),
      new Date(now() + ttlMs),
    ]);
    return token;
  }

  /** Consumes a single-use token; returns its user id (null for setup) or throws TOKEN_INVALID. */
  async function consumeEmailToken(token: string, purpose: 'verify-email' | 'password-reset' | 'setup'): Promise<string | null> {
    const r = await db.query<{ user_id: string | null }>(
      'update email_tokens set used_at = $3 where token_hash = $1 and purpose = $2 and used_at is null and expires_at > $3 returning user_id',
      [hashToken(token), purpose, new Date(now())],
    );
    if (r.rowCount === 0) throw new AppError('TOKEN_INVALID');
    return r.rows[0]?.user_id ?? null;
  }

  return { deps, note, argon2, policy, throttle, tokenTtlMs, mayMail, acceptablePassword, userByEmail, signInUserByEmail, userById, issueEmailToken, consumeEmailToken };
}

export type AccountsCore = ReturnType<typeof createAccountsCore>;
