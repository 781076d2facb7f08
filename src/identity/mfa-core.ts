/**
 * Second factors, shared part (AUTH-7, see mfa.ts): constants, shapes, and what every part uses:
 * whether a user has a factor, their status, matching a TOTP code, the per-user attempt budget
 * (reserved before a check, given back on success) and the freshness check of step-up.
 */
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { PLATFORM_TENANT_ID, type KeyScope, type Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { IdentityAudit } from './identity-audit.ts';
import { mailAccountOwner, type Mailer } from './mailer.ts';
import type { AuthenticationResponse, Passkeys } from './passkeys.ts';
import type { Sessions } from './sessions.ts';
import { matchTotp } from './totp.ts';

/** How long the second step of a sign-in may take. */
export const MFA_CHALLENGE_TTL_MS = 5 * 60_000;
/** How recent a second factor must be for a sensitive action (issue 8: five minutes). */
export const STEP_UP_MAX_AGE_MS = 5 * 60_000;
/** Codes one sign-in challenge accepts before it is spent. */
export const CHALLENGE_MAX_ATTEMPTS = 5;
/** Failed second-factor attempts per user (each is reserved before the check; a success gives it back). */
export const USER_LIMITS: readonly { name: string; limit: number; windowMs: number }[] = [
  { name: '15m', limit: 10, windowMs: 15 * 60_000 },
  { name: '24h', limit: 30, windowMs: 24 * 3_600_000 },
];
/** Steps accepted either side of the server's: a code typed at the end of its 30 s, small drift. */
export const TOTP_WINDOW = 1;
export const CHALLENGE_PREFIX = 'ghm_';
export const CHALLENGE_RE = /^ghm_[A-Za-z0-9_-]{43}$/;

/** What a user presents as a second factor: a TOTP code, a recovery code or a passkey assertion. */
export type SecondFactorProof = { code: string } | { recoveryCode: string } | { webauthn: AuthenticationResponse };

export type SecondFactorMethod = 'totp' | 'recovery' | 'webauthn';

export interface MfaStatus {
  totp: boolean;
  /** The id of the active authenticator app (what DELETE /v1/me/mfa/totp/:id takes), or null. */
  totpFactorId: string | null;
  /** How many passkeys the user has. */
  passkeys: number;
  recoveryCodesLeft: number;
}

export interface TotpEnrollment {
  factorId: string;
  otpauthUri: string;
  /** The URI as a PNG QR code (data: URL). */
  qrCodeDataUrl: string;
}

export interface MfaChallenge {
  mfaToken: string;
  methods: SecondFactorMethod[];
  expiresIn: number;
}

export interface MfaDeps {
  db: Db;
  kv: Kv;
  keyring: Keyring;
  sessions: Sessions;
  mailer: Mailer;
  config: Config;
  logger: Logger;
  now: () => number;
  publicOrigin: string;
  audit?: IdentityAudit;
  /** Passkeys count as a second factor and answer the `webauthn` proof. */
  passkeys?: Pick<Passkeys, 'verifyAssertion' | 'hasPasskey'>;
}

export interface FactorRow {
  id: string;
  secret_sealed: string;
  confirmed_at: Date | string | null;
}

export type Purpose = 'enroll' | 'sign-in' | 'step-up';

export const scopeOf = (userId: string): KeyScope => ({ tenantId: PLATFORM_TENANT_ID, subjectId: userId });
export const refOf = (factorId: string) => ({ table: 'mfa_factors', column: 'secret_sealed', rowId: factorId });

export type MfaCore = ReturnType<typeof createMfaCore>;

export function createMfaCore(deps: MfaDeps) {
  const { db, kv, keyring, sessions, mailer, logger, now } = deps;
  const note: IdentityAudit = deps.audit ?? (async () => undefined);

  async function hasActiveFactor(userId: string): Promise<boolean> {
    // A passkey is a second factor too (as the sign-in lookup's has_factor in accounts.ts).
    const r = await db.query(
      `select 1 where exists (select 1 from mfa_factors where user_id = $1 and confirmed_at is not null and deleted_at is null)
                   or exists (select 1 from passkeys where user_id = $1)`,
      [userId],
    );
    return r.rowCount > 0;
  }

  async function status(userId: string): Promise<MfaStatus> {
    const r = await db.query<{ totp_factor_id: string | null; codes_left: number; passkeys: number }>(
      `select (select id from mfa_factors where user_id = $1 and kind = 'totp' and confirmed_at is not null and deleted_at is null limit 1) as totp_factor_id,
              (select count(*)::int from recovery_codes where user_id = $1 and used_at is null and voided_at is null) as codes_left,
              (select count(*)::int from passkeys where user_id = $1) as passkeys`,
      [userId],
    );
    const row = r.rows[0];
    const totpFactorId = row?.totp_factor_id ?? null;
    return { totp: totpFactorId !== null, totpFactorId, passkeys: row?.passkeys ?? 0, recoveryCodesLeft: row?.codes_left ?? 0 };
  }

  const tellOwner = (userId: string, subject: string, text: string): Promise<void> => mailAccountOwner(db, mailer, userId, subject, text);

  /** Opens the factor's secret only for the one comparison, then wipes it. */
  async function matchFactor(userId: string, factor: FactorRow, code: string): Promise<number | null> {
    const secret = await keyring.open(scopeOf(userId), refOf(factor.id), factor.secret_sealed);
    try {
      return matchTotp(secret, code, { atMs: now(), window: TOTP_WINDOW });
    } finally {
      secret.fill(0);
    }
  }

  /**
   * Reserves one attempt in each of the user's windows before a code is checked (so parallel
   * guesses cannot slip past), or refuses with MFA_THROTTLED, counting nothing. Returns the give-back
   * for a success: only failures use up the budget. A counter store that cannot answer refuses (503).
   */
  async function reserveAttempt(userId: string, purpose: Purpose): Promise<() => Promise<void>> {
    const at = now();
    const taken: (typeof USER_LIMITS)[number][] = [];
    const giveBack = async (): Promise<void> => {
      try {
        for (const w of taken.splice(0)) await kv.releaseSlidingWindow(`auth:mfa:${w.name}:${userId}`, w.windowMs, at);
      } catch (err) {
        // The check already passed; a lost give-back costs the user one attempt, nothing more.
        logger.warn({ err, event: 'mfa_attempt_release_failed', userId }, 'could not give back a second-factor attempt');
      }
    };
    for (const w of USER_LIMITS) {
      let hit;
      try {
        hit = await kv.hitSlidingWindow(`auth:mfa:${w.name}:${userId}`, w.limit, w.windowMs, at);
      } catch (err) {
        await giveBack();
        throw new AppError('SERVICE_UNAVAILABLE', undefined, { headers: { 'retry-after': '5' }, cause: err });
      }
      if (hit.allowed) {
        taken.push(w);
        continue;
      }
      await giveBack();
      await note('mfa.failed', userId, { purpose, reason: 'throttled' });
      if (await kv.setIfAbsent(`auth:mail:mfa-throttled:${userId}`, '1', 3_600_000)) {
        logger.warn({ event: 'mfa_throttled', userId }, 'second-factor attempts throttled');
        await tellOwner(
          userId,
          'Repeated wrong second-factor codes',
          `Someone who knows the password of your Gatehouse account entered wrong second-factor codes repeatedly; further attempts are paused.\nIf this was not you, change your password at ${deps.publicOrigin} now.`,
        );
      }
      throw new AppError('MFA_THROTTLED', undefined, { headers: { 'retry-after': String(Math.max(1, Math.ceil(hit.retryAfterMs / 1000))) } });
    }
    return giveBack;
  }

  /** Refuses with MFA_STEP_UP_REQUIRED unless this session verified a second factor within STEP_UP_MAX_AGE_MS (when the user has one). */
  async function requireFreshSecondFactor(userId: string, sessionId: string): Promise<void> {
    if (!(await hasActiveFactor(userId))) return;
    const at = await sessions.secondFactorAt(userId, sessionId);
    if (at === null || now() - at > STEP_UP_MAX_AGE_MS) throw new AppError('MFA_STEP_UP_REQUIRED');
  }

  return { note, tellOwner, hasActiveFactor, status, matchFactor, reserveAttempt, requireFreshSecondFactor };
}
