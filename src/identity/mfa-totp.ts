/**
 * Second factors, TOTP (AUTH-7, see mfa.ts): enrolment (the secret sealed under the user's key,
 * shown once as a URI and a QR code), confirmation with a first code, and removal.
 */
import { randomUUID } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { generateTotpSecret, totpUri } from './totp.ts';
import { refOf, scopeOf, type FactorRow, type MfaCore, type MfaDeps, type TotpEnrollment } from './mfa-core.ts';

export function createMfaTotp(deps: MfaDeps, core: MfaCore) {
  const { db, keyring, sessions, config, now } = deps;
  const { note, tellOwner, status, matchFactor, reserveAttempt, requireFreshSecondFactor } = core;

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

  return { startTotpEnrollment, confirmTotp, removeTotp };
}
