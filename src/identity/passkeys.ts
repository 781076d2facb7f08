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
 * size-exception: createPasskeys is one factory closure (registration, assertion, management) of
 * small functions over shared services; split by concern is pending (issue 17); no measured reason
 * to keep it whole.
 */
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type {
  AuthenticationResponseJSON,
  AuthenticatorTransport,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { AppError } from '../server/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { IdentityAudit } from './identity-audit.ts';
import { mailAccountOwner, type Mailer } from './mailer.ts';

/** @simplewebauthn/server (about 5 MB of heap), loaded by the first passkey ceremony, not by every node. */
const webauthn = (): Promise<typeof import('@simplewebauthn/server')> => import('@simplewebauthn/server');

/** How long a ceremony may take, from options to response. */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000;
/** Most passkeys one user may hold. */
export const MAX_PASSKEYS_PER_USER = 20;
/** ES256, EdDSA, RS256: what the authenticators in use offer. */
const ALGORITHMS = [-7, -8, -257];

export const PASSKEY_ERROR_CODES = {
  PASSKEY_INVALID: {
    status: 401,
    message: 'The passkey response could not be verified.',
    doc: 'A WebAuthn response that fails verification: made for another origin or another RP id, a bad signature, a wrong ceremony type, user presence (or, for passwordless sign-in, user verification) missing, or undecodable data.',
  },
  PASSKEY_CHALLENGE_INVALID: {
    status: 401,
    message: 'The passkey challenge is unknown, expired or already used; start again.',
    doc: 'The response answers no open challenge of this flow: none was asked for, it expired (5 minutes), it was already answered (a replay), or it belongs to another flow or another user.',
  },
  PASSKEY_UNKNOWN: {
    status: 401,
    message: 'This passkey is not registered.',
    doc: 'The credential is not one of this server\'s passkeys (or, in the second step of a sign-in or a step-up, not one of this user\'s). Says nothing about any account.',
  },
  PASSKEY_CLONE_SUSPECTED: {
    status: 401,
    message: 'This passkey was refused; its owner has been notified.',
    doc: 'The authenticator\'s signature counter did not increase past the stored one: a sign of a cloned authenticator. The event is audited (`auth.passkey.clone_warning`) and the owner is mailed.',
  },
  PASSKEY_NOT_FOUND: { status: 404, message: 'No such passkey.', doc: 'No passkey of the signed-in user has this id, or the user has no passkey for this ceremony.' },
  PASSKEY_ALREADY_REGISTERED: { status: 409, message: 'This passkey is already registered.', doc: 'The credential id of a new passkey is already registered (to this or another account).' },
  PASSKEY_LIMIT_REACHED: { status: 409, message: 'Too many passkeys.', doc: `A user holds at most ${MAX_PASSKEYS_PER_USER} passkeys; remove one first.` },
  PASSKEY_REAUTH_REQUIRED: {
    status: 403,
    message: 'Confirm your password first.',
    doc: 'Adding the first second factor needs a session signed in within the last 5 minutes or the password in the options request, so a stolen session alone cannot add the thief\'s passkey.',
  },
} as const;

// Base64url fields of a credential, each bounded (the sizes browsers send are far below these).
const b64url = (max: number) => z.string().min(1).max(max).regex(/^[A-Za-z0-9_-]+$/, 'base64url');
const transport = z.enum(['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb']);
const extensionResults = z
  .record(z.string().max(64), z.unknown())
  .refine((r) => Object.keys(r).length <= 16, 'at most 16 extension results')
  .default({});
const credentialId = b64url(1366);

/** The JSON of navigator.credentials.create()'s result (PublicKeyCredential.toJSON()). */
export const registrationResponseSchema = z
  .strictObject({
    id: credentialId,
    rawId: credentialId,
    type: z.literal('public-key'),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: extensionResults,
    response: z.strictObject({
      clientDataJSON: b64url(4096),
      attestationObject: b64url(16_384),
      authenticatorData: b64url(8192).optional(),
      publicKey: b64url(4096).optional(),
      publicKeyAlgorithm: z.number().int().optional(),
      transports: z.array(transport).max(8).optional(),
    }),
  })
  .refine((r) => r.id === r.rawId, { message: 'id and rawId differ' });

/** The JSON of navigator.credentials.get()'s result. */
export const authenticationResponseSchema = z
  .strictObject({
    id: credentialId,
    rawId: credentialId,
    type: z.literal('public-key'),
    authenticatorAttachment: z.enum(['platform', 'cross-platform']).optional(),
    clientExtensionResults: extensionResults,
    response: z.strictObject({
      clientDataJSON: b64url(4096),
      authenticatorData: b64url(8192),
      signature: b64url(1024),
      userHandle: b64url(128).optional(),
    }),
  })
  .refine((r) => r.id === r.rawId, { message: 'id and rawId differ' });

export type RegistrationResponse = z.output<typeof registrationResponseSchema>;
export type AuthenticationResponse = z.output<typeof authenticationResponseSchema>;

/** A passkey's name: what the owner calls it in the list. */
// eslint-disable-next-line no-control-regex
export const passkeyNameSchema = z.string().trim().min(1).max(64).regex(/^[^\u0000-\u001f\u007f]+$/, 'no control characters');

/** Where a challenge was asked for; a response is accepted only by the same flow. */
export type PasskeyFlow = 'register' | 'mfa' | 'step-up' | 'login';

export interface WebauthnSettings {
  rpId: string;
  rpName: string;
  origins: string[];
}

/** The RP id, name and page origins: the `webauthn` section, else derived from the public origin. */
export function webauthnSettingsOf(config: Config, publicOrigin: string): WebauthnSettings {
  const { rpId, rpName, origins } = config.webauthn;
  return {
    rpId: rpId ?? new URL(publicOrigin).hostname.replace(/^\[|\]$/g, ''),
    rpName,
    origins: origins.length > 0 ? origins.map((o) => new URL(o).origin) : [publicOrigin],
  };
}

export interface PasskeyInfo {
  id: string;
  name: string;
  createdAt: string;
  lastUsedAt: string | null;
  transports: string[];
  deviceType: 'singleDevice' | 'multiDevice';
  backedUp: boolean;
}

interface PasskeyRow {
  id: string;
  user_id: string;
  credential_id: string;
  public_key: string;
  sign_counter: string | number;
  transports: string[];
  device_type: 'singleDevice' | 'multiDevice';
  backed_up: boolean;
  user_handle: string;
  name: string;
  created_at: Date | string;
  last_used_at: Date | string | null;
}

interface StoredChallenge {
  /** The challenge, base64url. */
  c: string;
  /** The user it was asked for (absent for passwordless sign-in). */
  u?: string;
  /** The user handle offered for a registration. */
  h?: string;
}

export interface PasskeysDeps {
  db: Db;
  kv: Kv;
  mailer: Mailer;
  config: Config;
  logger: Logger;
  now: () => number;
  publicOrigin: string;
  audit?: IdentityAudit;
}

const iso = (v: Date | string | null): string | null => (v === null ? null : (v instanceof Date ? v : new Date(v)).toISOString());
const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');

function infoOf(row: PasskeyRow): PasskeyInfo {
  return {
    id: row.id,
    name: row.name,
    createdAt: iso(row.created_at) ?? '',
    lastUsedAt: iso(row.last_used_at),
    transports: row.transports,
    deviceType: row.device_type,
    backedUp: row.backed_up,
  };
}

/** The challenge a response answers, read from its clientDataJSON (checked again by the verifier). */
function challengeOf(clientDataJSON: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
    const challenge = (parsed as { challenge?: unknown } | null)?.challenge;
    if (typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(challenge)) return challenge;
  } catch {
    // Not JSON: refused below.
  }
  throw new AppError('PASSKEY_INVALID');
}

export function createPasskeys(deps: PasskeysDeps) {
  const { db, kv, mailer, config, logger, now } = deps;
  const note: IdentityAudit = deps.audit ?? (async () => undefined);
  const settings = webauthnSettingsOf(config, deps.publicOrigin);

  const keyOf = (flow: PasskeyFlow, owner: string): string => `passkey:challenge:${flow}:${owner}`;

  const tellOwner = (userId: string, subject: string, text: string): Promise<void> => mailAccountOwner(db, mailer, userId, subject, text);

  async function rowsOf(userId: string): Promise<PasskeyRow[]> {
    return (
      await db.query<PasskeyRow>(
        'select id, user_id, credential_id, public_key, sign_counter, transports, device_type, backed_up, user_handle, name, created_at, last_used_at from passkeys where user_id = $1 order by created_at, id',
        [userId],
      )
    ).rows;
  }

  async function list(userId: string): Promise<PasskeyInfo[]> {
    return (await rowsOf(userId)).map(infoOf);
  }

  async function hasPasskey(userId: string): Promise<boolean> {
    return (await db.query('select 1 from passkeys where user_id = $1 limit 1', [userId])).rowCount > 0;
  }

  async function openChallenge(flow: PasskeyFlow, owner: string, value: StoredChallenge): Promise<void> {
    await kv.set(keyOf(flow, owner), JSON.stringify(value), PASSKEY_CHALLENGE_TTL_MS);
  }

  /**
   * Spends the open challenge of this flow and owner, whatever the response turns out to be, and
   * returns it when it is the one the response answers. The spent marker is set atomically, so
   * of two requests carrying the same response (on any node) only one gets past this point.
   */
  async function spendChallenge(flow: PasskeyFlow, owner: string, presented: string): Promise<StoredChallenge> {
    const key = keyOf(flow, owner);
    const raw = await kv.get(key);
    await kv.del(key);
    let stored: StoredChallenge | null;
    try {
      stored = raw ? (JSON.parse(raw) as StoredChallenge) : null;
    } catch {
      stored = null;
    }
    const first = await kv.setIfAbsent(`passkey:spent:${sha256(presented)}`, '1', PASSKEY_CHALLENGE_TTL_MS * 2);
    if (!stored || stored.c !== presented || !first) throw new AppError('PASSKEY_CHALLENGE_INVALID');
    return stored;
  }

  async function failed(userId: string | null, flow: PasskeyFlow, reason: string): Promise<void> {
    await note('auth.passkey.failed', userId, { flow, reason });
  }

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

  /** Account deletion: the passkeys go with the account. */
  async function forgetUser(tx: Queryable, userId: string): Promise<void> {
    await tx.query('delete from passkeys where user_id = $1', [userId]);
  }

  return { settings, list, hasPasskey, registrationOptions, register, rename, remove, assertionOptions, verifyAssertion, forgetUser };
}

export type Passkeys = ReturnType<typeof createPasskeys>;
