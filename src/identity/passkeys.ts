/**
 * WebAuthn passkeys (AUTH-7, issue 8 item 3): several named passkeys per user, used as a second
 * factor (the second step of a sign-in, step-up) and as a passwordless first factor through
 * discoverable credentials. The ceremonies are checked by @simplewebauthn/server; this module
 * owns challenges, storage, the sign counter and what is told to the owner.
 *
 * - Challenges are 32 random bytes, kept in the kv (so any node can finish a ceremony another
 *   node started) under a key naming the flow and whose it is (the user for registration, the
 *   sign-in's mfaToken, the session for step-up, the challenge itself for passwordless sign-in).
 *   A challenge is spent before the response is checked: the first answer, good or bad, uses it
 *   up, and a replayed response finds nothing (PASSKEY_CHALLENGE_INVALID).
 * - The RP id and the accepted page origins come from the `webauthn` config section; a response
 *   made for another origin or another RP id is refused (PASSKEY_INVALID).
 * - The sign counter: when the stored or the presented counter is non-zero and the presented one
 *   is not greater (WebAuthn §7.2 step 21), the authenticator may have been cloned: the ceremony
 *   is refused (PASSKEY_CLONE_SUSPECTED), audited and the owner is mailed. The counter moves by
 *   one compare-and-set update, so two assertions racing with one counter value cannot both pass.
 * - The user handle given to authenticators is random, never the email address.
 *
 * The parts: passkey-core.ts (schemas, rows, challenges), passkey-registration.ts,
 * passkey-assertion.ts; renaming, removal and account deletion are here.
 */
import { AppError } from '../server/errors.ts';
import type { Queryable } from '../store/db-types.ts';
import { createPasskeyAssertion } from './passkey-assertion.ts';
import { createPasskeyCore, infoOf, type PasskeysDeps, type PasskeyInfo } from './passkey-core.ts';
import { createPasskeyRegistration } from './passkey-registration.ts';

export {
  authenticationResponseSchema,
  MAX_PASSKEYS_PER_USER,
  PASSKEY_CHALLENGE_TTL_MS,
  PASSKEY_ERROR_CODES,
  passkeyNameSchema,
  registrationResponseSchema,
  webauthnSettingsOf,
} from './passkey-core.ts';
export type { AuthenticationResponse, PasskeyFlow, PasskeyInfo, PasskeysDeps, RegistrationResponse, WebauthnSettings } from './passkey-core.ts';

export function createPasskeys(deps: PasskeysDeps) {
  const { db, now } = deps;
  const core = createPasskeyCore(deps);
  const { note, settings, tellOwner, rowsOf, list, hasPasskey } = core;
  const { registrationOptions, register } = createPasskeyRegistration(deps, core);
  const { assertionOptions, verifyAssertion } = createPasskeyAssertion(deps, core);

  async function rename(userId: string, passkeyId: string, name: string): Promise<PasskeyInfo> {
    const r = await db.query('update passkeys set name = $3 where id = $1 and user_id = $2', [passkeyId, userId, name]);
    if (r.rowCount !== 1) throw new AppError('PASSKEY_NOT_FOUND');
    await note('passkey.renamed', userId, { passkey: passkeyId });
    const row = (await rowsOf(userId)).find((p) => p.id === passkeyId);
    if (!row) throw new AppError('PASSKEY_NOT_FOUND');
    return infoOf(row);
  }

  /**
   * Deletes a passkey (the caller has checked the step-up). Without any second factor left,
   * recovery codes would be a way in of their own: they are voided, as when TOTP is removed.
   */
  async function remove(userId: string, passkeyId: string): Promise<void> {
    const t = new Date(now());
    const removed = await db.transaction(async (tx) => {
      const r = await tx.query<{ name: string }>('delete from passkeys where id = $1 and user_id = $2 returning name', [passkeyId, userId]);
      await tx.query(
        `update recovery_codes set voided_at = $2 where user_id = $1 and voided_at is null
           and not exists (select 1 from mfa_factors where user_id = $1 and confirmed_at is not null and deleted_at is null)
           and not exists (select 1 from passkeys where user_id = $1)`,
        [userId, t],
      );
      return r.rows[0];
    });
    if (!removed) throw new AppError('PASSKEY_NOT_FOUND');
    await note('passkey.removed', userId, { passkey: passkeyId });
    await tellOwner(
      userId,
      'A passkey was removed',
      `The passkey named "${removed.name}" was removed from your Gatehouse account.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
    );
  }

  /** Account deletion: the passkeys go with the account. */
  async function forgetUser(tx: Queryable, userId: string): Promise<void> {
    await tx.query('delete from passkeys where user_id = $1', [userId]);
  }

  return { settings, list, hasPasskey, registrationOptions, register, rename, remove, assertionOptions, verifyAssertion, forgetUser };
}

export type Passkeys = ReturnType<typeof createPasskeys>;