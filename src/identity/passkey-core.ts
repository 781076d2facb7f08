/**
 * WebAuthn passkeys, shared part (AUTH-7, see passkeys.ts): constants, error codes, the request
 * schemas, the stored row, and what every ceremony uses: the user's passkeys, and challenges
 * opened and spent in the kv per flow and owner.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { Config } from '../config/schema.ts';
import { AppError } from '../server/errors.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { IdentityAudit } from './identity-audit.ts';
import { mailAccountOwner, type Mailer } from './mailer.ts';

/** @simplewebauthn/server (about 5 MB of heap), loaded by the first passkey ceremony, not by every node. */
export const webauthn = (): Promise<typeof import('@simplewebauthn/server')> => import('@simplewebauthn/server');

/** How long a ceremony may take, from options to response. */
export const PASSKEY_CHALLENGE_TTL_MS = 5 * 60_000;
/** Most passkeys one user may hold. */
export const MAX_PASSKEYS_PER_USER = 20;
/** ES256, EdDSA, RS256: what the authenticators in use offer. */
export const ALGORITHMS = [-7, -8, -257];

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

export interface PasskeyRow {
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

export interface StoredChallenge {
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

export const iso = (v: Date | string | null): string | null => (v === null ? null : (v instanceof Date ? v : new Date(v)).toISOString());
const sha256 = (s: string): string => createHash('sha256').update(s).digest('base64url');

export function infoOf(row: PasskeyRow): PasskeyInfo {
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
export function challengeOf(clientDataJSON: string): string {
  try {
    const parsed: unknown = JSON.parse(Buffer.from(clientDataJSON, 'base64url').toString('utf8'));
    const challenge = (parsed as { challenge?: unknown } | null)?.challenge;
    if (typeof challenge === 'string' && /^[A-Za-z0-9_-]{16,128}$/.test(challenge)) return challenge;
  } catch {
    // Not JSON: refused below.
  }
  throw new AppError('PASSKEY_INVALID');
}

export type PasskeyCore = ReturnType<typeof createPasskeyCore>;

export function createPasskeyCore(deps: PasskeysDeps) {
  const { db, kv, mailer, config } = deps;
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

  return { note, settings, tellOwner, rowsOf, list, hasPasskey, openChallenge, spendChallenge, failed };
}
