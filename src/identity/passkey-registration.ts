/**
 * WebAuthn passkeys, registration (AUTH-7, see passkeys.ts): creation options for a new
 * discoverable passkey and the check of the authenticator's answer.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { PublicKeyCredentialCreationOptionsJSON, RegistrationResponseJSON } from '@simplewebauthn/server';
import { AppError } from '../server/errors.ts';
import { ALGORITHMS, challengeOf, infoOf, MAX_PASSKEYS_PER_USER, PASSKEY_CHALLENGE_TTL_MS, webauthn, type PasskeyCore, type PasskeyInfo, type PasskeysDeps, type RegistrationResponse } from './passkey-core.ts';

export function createPasskeyRegistration(deps: PasskeysDeps, core: PasskeyCore) {
  const { db, logger, now } = deps;
  const { note, settings, tellOwner, rowsOf, openChallenge, spendChallenge, failed } = core;

  /**
   * Creation options for a new passkey of the user: a discoverable credential (residentKey
   * required), the user's existing passkeys excluded, the random user handle of the user.
   */
  async function registrationOptions(userId: string, email: string): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await rowsOf(userId);
    if (existing.length >= MAX_PASSKEYS_PER_USER) throw new AppError('PASSKEY_LIMIT_REACHED');
    const handle = existing[0]?.user_handle ?? randomBytes(32).toString('base64url');
    const options = await (await webauthn()).generateRegistrationOptions({
      rpName: settings.rpName,
      rpID: settings.rpId,
      userName: email,
      userDisplayName: email,
      userID: Buffer.from(handle, 'base64url'),
      challenge: randomBytes(32),
      timeout: PASSKEY_CHALLENGE_TTL_MS,
      attestationType: 'none',
      excludeCredentials: existing.map((p) => ({ id: p.credential_id, transports: p.transports })),
      authenticatorSelection: { residentKey: 'required', requireResidentKey: true, userVerification: 'preferred' },
      supportedAlgorithmIDs: ALGORITHMS,
    });
    await openChallenge('register', userId, { c: options.challenge, u: userId, h: handle });
    return options;
  }

  /** Verifies a creation response against the user's open registration challenge and stores the passkey. */
  async function register(userId: string, name: string, response: RegistrationResponse): Promise<PasskeyInfo> {
    const stored = await spendChallenge('register', userId, challengeOf(response.response.clientDataJSON)).catch(async (err: unknown) => {
      await failed(userId, 'register', 'challenge');
      throw err;
    });
    let verified;
    try {
      verified = await (await webauthn()).verifyRegistrationResponse({
        response: response as RegistrationResponseJSON,
        expectedChallenge: stored.c,
        expectedOrigin: settings.origins,
        expectedRPID: settings.rpId,
        requireUserVerification: false,
        supportedAlgorithmIDs: ALGORITHMS,
      });
    } catch (err) {
      logger.info({ event: 'passkey_registration_refused', userId, reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown' }, 'passkey registration refused');
      await failed(userId, 'register', 'verification');
      throw new AppError('PASSKEY_INVALID');
    }
    if (!verified.verified) {
      await failed(userId, 'register', 'verification');
      throw new AppError('PASSKEY_INVALID');
    }
    const info = verified.registrationInfo;
    const id = randomUUID();
    const t = new Date(now());
    const transports = (response.response.transports ?? []).filter((x, i, all) => all.indexOf(x) === i);
    try {
      await db.transaction(async (tx) => {
        // The user row is the lock: two registrations at once cannot pass the limit together.
        await tx.query('select 1 from users where id = $1 for update', [userId]);
        const count = await tx.query<{ n: number }>('select count(*)::int as n from passkeys where user_id = $1', [userId]);
        if ((count.rows[0]?.n ?? 0) >= MAX_PASSKEYS_PER_USER) throw new AppError('PASSKEY_LIMIT_REACHED');
        await tx.query(
          `insert into passkeys (id, user_id, credential_id, public_key, sign_counter, transports, device_type, backed_up, user_handle, aaguid, name, created_at)
           values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
          [
            id,
            userId,
            info.credential.id,
            Buffer.from(info.credential.publicKey).toString('base64url'),
            info.credential.counter,
            transports,
            info.credentialDeviceType,
            info.credentialBackedUp,
            stored.h ?? randomBytes(32).toString('base64url'),
            info.aaguid,
            name,
            t,
          ],
        );
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new AppError('PASSKEY_ALREADY_REGISTERED');
      throw err;
    }
    await note('passkey.added', userId, { passkey: id, deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp });
    await tellOwner(
      userId,
      'A passkey was added',
      `A passkey named "${name}" was added to your Gatehouse account.\nIf this was not you, reset your password at ${deps.publicOrigin} and contact your administrator.`,
    );
    const row = (await rowsOf(userId)).find((p) => p.id === id);
    if (!row) throw new AppError('INTERNAL');
    return infoOf(row);
  }

  return { registrationOptions, register };
}
