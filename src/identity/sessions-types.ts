/**
 * The shapes and shared state of sessions (AUTH-3): what the facade in sessions.ts exports, and the
 * dependencies its parts (sessions-issue.ts, sessions-state-ops.ts) close over.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import type { IdentityAudit } from './identity-audit.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import type { AccessClaims, createAccessTokenVerifier } from './access-tokens.ts';
import type { createSessionStateCache } from './session-state.ts';

export interface SessionSettings {
  issuer: string;
  audience: string;
  accessTtlSeconds: number;
  refreshIdleSeconds: number;
  refreshAbsoluteSeconds: number;
  reuseGraceSeconds: number;
  /** Tolerance on an access token's exp, nbf and iat, in seconds. */
  clockSkewSeconds: number;
}

export interface IssuedTokens {
  sessionId: string;
  accessToken: string;
  accessExpiresAt: number;
  refreshToken: string;
  refreshExpiresAt: number;
}

export interface SessionContext {
  mode: 'bearer' | 'cookie';
  ip: string;
  userAgent: string | undefined;
  deviceId?: string;
  /** The sign-in verified a second factor: recorded as the session's first step-up. */
  secondFactor?: boolean;
}

export interface SessionInfo {
  id: string;
  mode: 'bearer' | 'cookie';
  ip: string | null;
  userAgent: string | null;
  createdAt: string;
  lastUsedAt: string;
  current: boolean;
}

export interface VerifiedAccess {
  userId: string;
  sessionId: string;
  claims: AccessClaims;
}

/** SHA-256 of a token, the only form in which tokens are stored. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('base64url');
}

export interface SessionRow {
  id: string;
  user_id: string;
  successor_key: string;
  revoked_at: Date | string | null;
  idle_expires_at: Date | string;
  absolute_expires_at: Date | string;
}

export interface RefreshRow {
  id: string;
  session_id: string;
  used_at: Date | string | null;
}

export const toMs = (v: Date | string): number => (v instanceof Date ? v.getTime() : Date.parse(v));

export interface Sessions {
  create(userId: string, ctx: SessionContext): Promise<IssuedTokens>;
  refresh(refreshToken: string): Promise<IssuedTokens>;
  /** Verifies an access token and its revocation state; null when it must not be honoured. */
  verifyAccess(token: string): Promise<VerifiedAccess | null>;
  /**
   * Whether a session is revoked (logout, logout-all, a disabled user, a password reset), from kv or,
   * when kv does not know, the database: what credentials derived from a session (client tokens) ask.
   */
  sessionRevoked(userId: string, sessionId: string): Promise<boolean>;
  revokeSession(userId: string, sessionId: string, reason: string): Promise<boolean>;
  /** Revokes every session of a user (optionally but one) and every access token issued before now. */
  revokeAllForUser(userId: string, reason: string, exceptSessionId?: string): Promise<number>;
  list(userId: string, currentSessionId?: string): Promise<SessionInfo[]>;
  markReauthenticated(sessionId: string): Promise<void>;
  /** When this (unrevoked) session last proved the password (a sign-in or a re-entry), in ms; null if never. */
  reauthenticatedAt(userId: string, sessionId: string): Promise<number | null>;
  /** Records that this session verified a second factor now (sensitive actions ask how recently). */
  markSecondFactor(userId: string, sessionId: string): Promise<void>;
  /** When this live session of the user last verified a second factor (ms), or null. */
  secondFactorAt(userId: string, sessionId: string): Promise<number | null>;
}

/** What the parts of the sessions factory share. */
export interface SessionDeps {
  db: Db;
  signingKeys: SigningKeys;
  settings: SessionSettings;
  logger: Logger;
  now: () => number;
  note: IdentityAudit;
  verifier: ReturnType<typeof createAccessTokenVerifier>;
  sessionState: ReturnType<typeof createSessionStateCache>;
}

/** Revokes one session in the database first, then in kv (every node's cache). */
export async function revokeSessionRow(deps: SessionDeps, sessionId: string, reason: string): Promise<void> {
  await deps.db.query('update sessions set revoked_at = $2, revoked_reason = $3 where id = $1 and revoked_at is null', [sessionId, new Date(deps.now()), reason]);
  await deps.sessionState.markRevoked([sessionId]);
}
