/**
 * WebAuthn passkeys, assertions (AUTH-7, see passkeys.ts): request options and the check of an
 * assertion, with the sign counter moved by compare-and-set (a counter going back is refused).
 */
import { randomBytes } from 'node:crypto';
import type { AuthenticationResponseJSON, AuthenticatorTransport, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { AppError } from '../server/errors.ts';
import { challengeOf, PASSKEY_CHALLENGE_TTL_MS, webauthn, type AuthenticationResponse, type PasskeyCore, type PasskeyFlow, type PasskeyRow, type PasskeysDeps } from './passkey-core.ts';

export function createPasskeyAssertion(deps: PasskeysDeps, core: PasskeyCore) {
  const { db, kv, logger, now } = deps;
  const { note, settings, tellOwner, rowsOf, openChallenge, spendChallenge, failed } = core;

  /**
   * Request options for an assertion. With a user (second step of a sign-in, step-up) the
   * allowed credentials are that user's passkeys; without one (passwordless sign-in) the list is
   * empty and the authenticator offers its discoverable credentials for this RP.
   */
  async function assertionOptions(flow: Exclude<PasskeyFlow, 'register'>, owner: string | null, userId: string | null): Promise<PublicKeyCredentialRequestOptionsJSON> {
    const rows = userId ? await rowsOf(userId) : [];
    if (userId && rows.length === 0) throw new AppError('PASSKEY_NOT_FOUND');
    const options = await (await webauthn()).generateAuthenticationOptions({
      rpID: settings.rpId,
      challenge: randomBytes(32),
      timeout: PASSKEY_CHALLENGE_TTL_MS,
      // A passkey that signs in alone must verify the user (PIN, biometrics): that makes it multi-factor.
      userVerification: flow === 'login' ? 'required' : 'preferred',
      allowCredentials: rows.map((p) => ({ id: p.credential_id, transports: p.transports as AuthenticatorTransport[] })),
    });
    await openChallenge(flow, owner ?? options.challenge, { c: options.challenge, ...(userId ? { u: userId } : {}) });
    return options;
  }

  /**
   * Checks an assertion against the open challenge of this flow (spent first) and, for a known
   * user, against that user's passkeys. Moves the sign counter; returns whose passkey it was.
   */
  async function verifyAssertion(
    flow: Exclude<PasskeyFlow, 'register'>,
    owner: string | null,
    userId: string | null,
    response: AuthenticationResponse,
  ): Promise<{ userId: string; passkeyId: string }> {
    const presented = challengeOf(response.response.clientDataJSON);
    await spendChallenge(flow, owner ?? presented, presented).catch(async (err: unknown) => {
      await failed(userId, flow, 'challenge');
      throw err;
    });
    const row = (
      await db.query<PasskeyRow>(
        'select id, user_id, credential_id, public_key, sign_counter, transports, device_type, backed_up, user_handle, name, created_at, last_used_at from passkeys where credential_id = $1',
        [response.id],
      )
    ).rows[0];
    if (!row || (userId !== null && row.user_id !== userId)) {
      await failed(userId, flow, 'unknown-credential');
      throw new AppError('PASSKEY_UNKNOWN');
    }
    // A discoverable credential names its user: it must be the handle this passkey was made with.
    if (response.response.userHandle !== undefined && response.response.userHandle !== row.user_handle) {
      await failed(row.user_id, flow, 'user-handle');
      throw new AppError('PASSKEY_INVALID');
    }
    const storedCounter = Number(row.sign_counter);
    let verified;
    try {
      verified = await (await webauthn()).verifyAuthenticationResponse({
        response: response as AuthenticationResponseJSON,
        expectedChallenge: presented,
        expectedOrigin: settings.origins,
        expectedRPID: settings.rpId,
        // The counter is compared below, where a clone is told apart from a bad response.
        credential: { id: row.credential_id, publicKey: Buffer.from(row.public_key, 'base64url'), counter: 0, transports: row.transports as AuthenticatorTransport[] },
        requireUserVerification: flow === 'login',
      });
    } catch (err) {
      logger.info({ event: 'passkey_assertion_refused', userId: row.user_id, flow, reason: err instanceof Error ? err.message.slice(0, 200) : 'unknown' }, 'passkey assertion refused');
      await failed(row.user_id, flow, 'verification');
      throw new AppError('PASSKEY_INVALID');
    }
    if (!verified.verified) {
      await failed(row.user_id, flow, 'verification');
      throw new AppError('PASSKEY_INVALID');
    }
    const { newCounter, credentialBackedUp } = verified.authenticationInfo;
    const t = new Date(now());
    // Compare-and-set: the counter only grows (or stays 0 for authenticators that do not count).
    const moved =
      (storedCounter > 0 || newCounter > 0) && newCounter <= storedCounter
        ? { rowCount: 0 }
        : await db.query(
            'update passkeys set sign_counter = $2, last_used_at = $3, backed_up = $4 where id = $1 and (sign_counter < $2 or (sign_counter = 0 and $2 = 0))',
            [row.id, newCounter, t, credentialBackedUp],
          );
    if (moved.rowCount !== 1) {
      await note('auth.passkey.clone_warning', row.user_id, { passkey: row.id, flow, storedCounter, presentedCounter: newCounter });
      logger.warn({ event: 'passkey_clone_warning', userId: row.user_id, passkeyId: row.id, storedCounter, presentedCounter: newCounter }, 'passkey signature counter went back');
      if (await kv.setIfAbsent(`auth:mail:passkey-clone:${row.id}`, '1', 3_600_000)) {
        await tellOwner(
          row.user_id,
          'A passkey may have been copied',
          `Your passkey named "${row.name}" was used with a signature counter lower than before, which can mean the authenticator was copied. The sign-in was refused.\nIf you did not try to sign in just now, remove this passkey and change your password at ${deps.publicOrigin}.`,
        );
      }
      throw new AppError('PASSKEY_CLONE_SUSPECTED');
    }
    return { userId: row.user_id, passkeyId: row.id };
  }


  return { assertionOptions, verifyAssertion };
}
