/**
 * Second factors (AUTH-7): TOTP enrolment and verification, recovery codes, the second step of a
 * sign-in and step-up for sensitive actions.
 *
 * - The TOTP secret is sealed under the user's personal-data key, so deleting the account
 *   shreds it; it is shown once, in the enrolment answer, and never logged or audited.
 * - A code is accepted only for a time step later than the last one accepted for the factor,
 *   moved by one compare-and-set update, so a code works once even when sent twice at once.
 * - Guessing is bounded twice, both counted before the code is checked so parallel requests
 *   cannot slip past: a sign-in challenge allows CHALLENGE_MAX_ATTEMPTS codes, then it is spent;
 *   every user allows USER_LIMITS failed second-factor attempts per window across challenges,
 *   step-ups and enrolment (reserved before the check, given back when the factor is right, so
 *   correct sign-ins never use the budget up). With 3 of 10^6 codes valid at a time (±1 step), 30 tries a day give a guesser
 *   with the password about 1 chance in 11 000 per day, and the owner is mailed at the first
 *   refusal. Reaching a limit needs the password (or a session), so it cannot be used to lock
 *   out a user by email address alone.
 *
 * size-exception: createMfa is one factory closure (TOTP, recovery codes, challenges, step-up,
 * throttling) of small functions over shared services; split by concern is pending (issue 17); no
 * measured reason to keep it whole.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import { PLATFORM_TENANT_ID, type KeyScope, type Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { SealedColumn } from '../server/route.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { IdentityAudit } from './identity-audit.ts';
import { mailAccountOwner, type Mailer } from './mailer.ts';
import type { AuthenticationResponse, Passkeys } from './passkeys.ts';
import { generateRecoveryCodes, hashRecoveryCode, normalizeRecoveryCode } from './recovery-codes.ts';
import { hashToken, type Sessions } from './sessions.ts';
import { generateTotpSecret, matchTotp, totpUri } from './totp.ts';

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
const TOTP_WINDOW = 1;
const CHALLENGE_PREFIX = 'ghm_';
const CHALLENGE_RE = /^ghm_[A-Za-z0-9_-]{43}$/;

/** The sealed TOTP secret column, for key rotation and the registry scan. */
export const MFA_SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'mfa_factors', column: 'secret_sealed', idColumn: 'id', tenantColumn: null, subjectColumn: 'user_id' },
];

/** What a user presents as a second factor: a TOTP code, a recovery code or a passkey assertion. */
export type SecondFactorProof = { code: string } | { recoveryCode: string } | { webauthn: AuthenticationResponse };

export type SecondFactorMethod = 'totp' | 'recovery' | 'webauthn';

export interface MfaStatus {
  totp: boolean;
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

interface FactorRow {
  id: string;
  secret_sealed: string;
  confirmed_at: Date | string | null;
}

type Purpose = 'enroll' | 'sign-in' | 'step-up';

const scopeOf = (userId: string): KeyScope => ({ tenantId: PLATFORM_TENANT_ID, subjectId: userId });
const refOf = (factorId: string) => ({ table: 'mfa_factors', column: 'secret_sealed', rowId: factorId });

export function createMfa(deps: MfaDeps) {
  const { db, kv, keyring, sessions, mailer, config, logger, now } = deps;
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
    const r = await db.query<{ totp: boolean; codes_left: number; passkeys: number }>(
      `select exists (select 1 from mfa_factors where user_id = $1 and kind = 'totp' and confirmed_at is not null and deleted_at is null) as totp,
              (select count(*)::int from recovery_codes where user_id = $1 and used_at is null and voided_at is null) as codes_left,
              (select count(*)::int from passkeys where user_id = $1) as passkeys`,
      [userId],
    );
    const row = r.rows[0];
    return { totp: row?.totp === true, passkeys: row?.passkeys ?? 0, recoveryCodesLeft: row?.codes_left ?? 0 };
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

  /**
   * Checks a second factor of the user: a TOTP code of the confirmed factor, or an unused recovery
   * code (spent by this call). Audits the outcome; throws MFA_CODE_INVALID or MFA_THROTTLED.
   * The attempt is reserved first and given back on success.
   */
  async function verifyProof(userId: string, proof: SecondFactorProof, purpose: Purpose, flowOwner = ''): Promise<SecondFactorMethod> {
    const giveBack = await reserveAttempt(userId, purpose);
    const method = await checkProof(userId, proof, purpose, flowOwner);
    await giveBack();
    return method;
  }

  async function checkProof(userId: string, proof: SecondFactorProof, purpose: Purpose, flowOwner: string): Promise<SecondFactorMethod> {
    const t = new Date(now());
    if ('webauthn' in proof) {
      // The assertion must answer the challenge opened for this sign-in (its mfaToken) or this session's step-up.
      const passkeys = deps.passkeys;
      try {
        if (!passkeys || purpose === 'enroll') throw new AppError('PASSKEY_UNKNOWN');
        await passkeys.verifyAssertion(purpose === 'sign-in' ? 'mfa' : 'step-up', flowOwner, userId, proof.webauthn);
      } catch (err) {
        await note('mfa.failed', userId, { purpose, method: 'webauthn', reason: err instanceof AppError ? err.code : 'error' });
        throw err;
      }
      await note('mfa.verified', userId, { purpose, method: 'webauthn' });
      return 'webauthn';
    }
    if ('code' in proof) {
      const factor = (
        await db.query<FactorRow>(
          "select id, secret_sealed, confirmed_at from mfa_factors where user_id = $1 and kind = 'totp' and confirmed_at is not null and deleted_at is null",
          [userId],
        )
      ).rows[0];
      const step = factor ? await matchFactor(userId, factor, proof.code) : null;
      if (factor && step !== null) {
        // Compare-and-set: of two requests carrying the same code, exactly one moves last_step.
        const moved = await db.query('update mfa_factors set last_step = $2 where id = $1 and deleted_at is null and (last_step is null or last_step < $2)', [
          factor.id,
          step,
        ]);
        if (moved.rowCount === 1) {
          await note('mfa.verified', userId, { purpose, method: 'totp' });
          return 'totp';
        }
      }
      await note('mfa.failed', userId, { purpose, method: 'totp', reason: !factor ? 'no-factor' : step === null ? 'wrong-code' : 'replayed' });
      throw new AppError('MFA_CODE_INVALID');
    }
    const normalized = normalizeRecoveryCode(proof.recoveryCode);
    const spent = normalized
      ? await db.query('update recovery_codes set used_at = $3 where user_id = $1 and code_hash = $2 and used_at is null and voided_at is null', [
          userId,
          hashRecoveryCode(normalized),
          t,
        ])
      : { rowCount: 0 };
    if (spent.rowCount !== 1) {
      await note('mfa.failed', userId, { purpose, method: 'recovery', reason: 'wrong-code' });
      throw new AppError('MFA_CODE_INVALID');
    }
    const left = (await status(userId)).recoveryCodesLeft;
    await note('mfa.recovery.used', userId, { purpose, left });
    await tellOwner(
      userId,
      'A recovery code was used',
      `A recovery code of your Gatehouse account was used (${left} left).\nIf this was not you, change your password at ${deps.publicOrigin} and generate new recovery codes.`,
    );
    return 'recovery';
  }

  async function startTotpEnrollment(userId: string, email: string): Promise<TotpEnrollment> {
    if ((await status(userId)).totp) throw new AppError('MFA_ALREADY_ENROLLED');
    const id = randomUUID();
    const secret = generateTotpSecret();
    try {
      const sealed = await keyring.seal(scopeOf(userId), refOf(id), secret);
      const t = new Date(now());
      try {
        await db.transaction(async (tx) => {
          // An unfinished enrolment is replaced: only the newest QR code can be confirmed.
          await tx.query("update mfa_factors set deleted_at = $2 where user_id = $1 and kind = 'totp' and confirmed_at is null and deleted_at is null", [userId, t]);
          await tx.query("insert into mfa_factors (id, user_id, kind, secret_sealed, created_at) values ($1, $2, 'totp', $3, $4)", [id, userId, sealed, t]);
        });
      } catch (err) {
        // The one-live-factor index: a confirmed factor (or a racing enrolment) got there first.
        if ((err as { code?: string }).code === '23505') throw new AppError('MFA_ALREADY_ENROLLED');
        throw err;
      }
      const otpauthUri = totpUri(secret, { issuer: config.auth.mfaIssuer, label: email });
      // qrcode is loaded with the first enrolment, not by every node at start.
      const { default: QRCode } = await import('qrcode');
      const qrCodeDataUrl = await QRCode.toDataURL(otpauthUri, { errorCorrectionLevel: 'M', margin: 2, width: 240 });
      return { factorId: id, otpauthUri, qrCodeDataUrl };
    } finally {
      secret.fill(0);
    }
  }

  /** Activates a pending factor with its first code; the session counts as freshly verified. */
  async function confirmTotp(userId: string, sessionId: string, factorId: string, code: string): Promise<void> {
    const giveBack = await reserveAttempt(userId, 'enroll');
    const factor = (
      await db.query<FactorRow>(
        "select id, secret_sealed, confirmed_at from mfa_factors where id = $1 and user_id = $2 and kind = 'totp' and confirmed_at is null and deleted_at is null",
        [factorId, userId],
      )
    ).rows[0];
    if (!factor) throw new AppError('NOT_FOUND', 'No such pending factor.');
    const step = await matchFactor(userId, factor, code);
    const confirmed =
      step === null
        ? { rowCount: 0 }
        : await db.query('update mfa_factors set confirmed_at = $3, last_step = $4 where id = $1 and user_id = $2 and confirmed_at is null and deleted_at is null', [
            factorId,
            userId,
            new Date(now()),
            step,
          ]);
    if (confirmed.rowCount !== 1) {
      await note('mfa.failed', userId, { purpose: 'enroll', method: 'totp', reason: 'wrong-code' });
      throw new AppError('MFA_CODE_INVALID');
    }
    await giveBack();
    await sessions.markSecondFactor(userId, sessionId);
    await note('mfa.enrolled', userId, { factor: factorId, kind: 'totp' });
    await tellOwner(
      userId,
      'A second factor was added',
      `An authenticator app (TOTP) was added to your Gatehouse account as a second factor.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
    );
  }

  /** Refuses with MFA_STEP_UP_REQUIRED unless this session verified a second factor within STEP_UP_MAX_AGE_MS (when the user has one). */
  async function requireFreshSecondFactor(userId: string, sessionId: string): Promise<void> {
    if (!(await hasActiveFactor(userId))) return;
    const at = await sessions.secondFactorAt(userId, sessionId);
    if (at === null || now() - at > STEP_UP_MAX_AGE_MS) throw new AppError('MFA_STEP_UP_REQUIRED');
  }

  async function stepUp(userId: string, sessionId: string, proof: SecondFactorProof): Promise<SecondFactorMethod> {
    if (!(await hasActiveFactor(userId))) throw new AppError('MFA_NOT_ENROLLED');
    const method = await verifyProof(userId, proof, 'step-up', sessionId);
    await sessions.markSecondFactor(userId, sessionId);
    return method;
  }

  async function removeTotp(userId: string, sessionId: string, factorId: string): Promise<void> {
    const factor = (
      await db.query<{ confirmed_at: Date | string | null }>("select confirmed_at from mfa_factors where id = $1 and user_id = $2 and kind = 'totp' and deleted_at is null", [
        factorId,
        userId,
      ])
    ).rows[0];
    if (!factor) throw new AppError('NOT_FOUND', 'No such factor.');
    await requireFreshSecondFactor(userId, sessionId);
    const t = new Date(now());
    const removed = await db.transaction(async (tx) => {
      const r = await tx.query('update mfa_factors set deleted_at = $3 where id = $1 and user_id = $2 and deleted_at is null', [factorId, userId, t]);
      // Recovery codes stand in for a factor; with none left they would be a way in of their own.
      await tx.query(
        `update recovery_codes set voided_at = $2 where user_id = $1 and voided_at is null
           and not exists (select 1 from mfa_factors where user_id = $1 and confirmed_at is not null and deleted_at is null)
           and not exists (select 1 from passkeys where user_id = $1)`,
        [userId, t],
      );
      return r.rowCount;
    });
    if (removed === 0) throw new AppError('NOT_FOUND', 'No such factor.');
    await note('mfa.removed', userId, { factor: factorId, kind: 'totp', confirmed: factor.confirmed_at !== null });
    if (factor.confirmed_at !== null) {
      await tellOwner(
        userId,
        'A second factor was removed',
        `The authenticator app (TOTP) was removed from your Gatehouse account.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
      );
    }
  }

  /** A new set of recovery codes (shown once); the old set stops working. Needs a factor, freshly verified. */
  async function regenerateRecoveryCodes(userId: string, sessionId: string): Promise<string[]> {
    // Recovery codes stand in for a factor, so they exist only beside one.
    if (!(await hasActiveFactor(userId))) throw new AppError('MFA_NOT_ENROLLED');
    await requireFreshSecondFactor(userId, sessionId);
    const codes = generateRecoveryCodes();
    const t = new Date(now());
    await db.transaction(async (tx) => {
      await tx.query('update recovery_codes set voided_at = $2 where user_id = $1 and voided_at is null', [userId, t]);
      for (const code of codes) {
        const normalized = normalizeRecoveryCode(code);
        if (!normalized) throw new Error('generated recovery code does not normalise');
        await tx.query('insert into recovery_codes (id, user_id, code_hash, created_at) values ($1, $2, $3, $4)', [randomUUID(), userId, hashRecoveryCode(normalized), t]);
      }
    });
    await note('mfa.recovery.regenerated', userId, { count: codes.length });
    await tellOwner(
      userId,
      'New recovery codes',
      `New recovery codes were generated for your Gatehouse account; the earlier ones no longer work.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
    );
    return codes;
  }

  /** After the password step: a single-use token for the second step of this sign-in. */
  async function issueChallenge(userId: string, mode: 'bearer' | 'cookie'): Promise<MfaChallenge> {
    const token = CHALLENGE_PREFIX + randomBytes(32).toString('base64url');
    const t = now();
    await db.query('insert into mfa_challenges (id, user_id, token_hash, mode, expires_at, created_at) values ($1, $2, $3, $4, $5, $6)', [
      randomUUID(),
      userId,
      hashToken(token),
      mode,
      new Date(t + MFA_CHALLENGE_TTL_MS),
      new Date(t),
    ]);
    const s = await status(userId);
    const passkey = (await deps.passkeys?.hasPasskey(userId)) === true;
    const methods: SecondFactorMethod[] = [
      ...(s.totp ? (['totp'] as const) : []),
      ...(s.recoveryCodesLeft > 0 ? (['recovery'] as const) : []),
      ...(passkey ? (['webauthn'] as const) : []),
    ];
    return { mfaToken: token, methods, expiresIn: Math.floor(MFA_CHALLENGE_TTL_MS / 1000) };
  }

  /**
   * The second step of a sign-in: spends the challenge when the factor checks out and returns
   * whose sign-in it completes. Throws MFA_TOKEN_INVALID, MFA_CODE_INVALID or MFA_THROTTLED.
   */
  async function completeChallenge(mfaToken: string, proof: SecondFactorProof): Promise<{ userId: string; mode: 'bearer' | 'cookie'; method: SecondFactorMethod }> {
    if (!CHALLENGE_RE.test(mfaToken)) throw new AppError('MFA_TOKEN_INVALID');
    const tokenHash = hashToken(mfaToken);
    const t = new Date(now());
    // Each code takes one of the challenge's attempts before it is checked, in one statement, so
    // parallel guesses cannot exceed them.
    const taken = await db.query<{ id: string; user_id: string; mode: 'bearer' | 'cookie' }>(
      'update mfa_challenges set attempts = attempts + 1 where token_hash = $1 and used_at is null and expires_at > $2 and attempts < $3 returning id, user_id, mode',
      [tokenHash, t, CHALLENGE_MAX_ATTEMPTS],
    );
    const challenge = taken.rows[0];
    if (!challenge) {
      const known = (await db.query<{ user_id: string }>('select user_id from mfa_challenges where token_hash = $1', [tokenHash])).rows[0];
      if (known) await note('mfa.failed', known.user_id, { purpose: 'sign-in', reason: 'challenge-spent' });
      throw new AppError('MFA_TOKEN_INVALID');
    }
    const method = await verifyProof(challenge.user_id, proof, 'sign-in', tokenHash);
    // Single use: of two completions racing with two valid factors, one signs in.
    const spent = await db.query('update mfa_challenges set used_at = $2 where id = $1 and used_at is null', [challenge.id, t]);
    if (spent.rowCount !== 1) throw new AppError('MFA_TOKEN_INVALID');
    return { userId: challenge.user_id, mode: challenge.mode, method };
  }

  /**
   * Whose open sign-in challenge this is, without spending an attempt (the passkey options of the
   * second step), with the owner key its passkey challenge is filed under. Throws MFA_TOKEN_INVALID.
   */
  async function challengeUser(mfaToken: string): Promise<{ userId: string; flowOwner: string }> {
    if (!CHALLENGE_RE.test(mfaToken)) throw new AppError('MFA_TOKEN_INVALID');
    const tokenHash = hashToken(mfaToken);
    const r = await db.query<{ user_id: string }>('select user_id from mfa_challenges where token_hash = $1 and used_at is null and expires_at > $2 and attempts < $3', [
      tokenHash,
      new Date(now()),
      CHALLENGE_MAX_ATTEMPTS,
    ]);
    const row = r.rows[0];
    if (!row) throw new AppError('MFA_TOKEN_INVALID');
    return { userId: row.user_id, flowOwner: tokenHash };
  }

  /** Account deletion: factors, passkeys, codes and open challenges end with the account (the secret's key is shredded separately). */
  async function forgetUser(tx: Queryable, userId: string, at: Date): Promise<void> {
    await tx.query('delete from passkeys where user_id = $1', [userId]);
    await tx.query('update mfa_factors set deleted_at = coalesce(deleted_at, $2) where user_id = $1', [userId, at]);
    await tx.query('update recovery_codes set voided_at = coalesce(voided_at, $2) where user_id = $1', [userId, at]);
    await tx.query('update mfa_challenges set used_at = coalesce(used_at, $2) where user_id = $1', [userId, at]);
  }

  return {
    hasActiveFactor,
    status,
    startTotpEnrollment,
    confirmTotp,
    removeTotp,
    regenerateRecoveryCodes,
    requireFreshSecondFactor,
    stepUp,
    issueChallenge,
    completeChallenge,
    challengeUser,
    forgetUser,
  };
}

export type Mfa = ReturnType<typeof createMfa>;
