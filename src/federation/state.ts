/**
 * Browser-bound state of a started SSO sign-in: a short-lived cookie whose value is a JSON
 * payload and its HMAC-SHA-256. The key lives in kv, so every node opens what another signed.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../crypto/compare.ts';
import { AppError } from '../server/errors.ts';
import type { Kv } from '../store/kv/types.ts';

/** OIDC: the callback is a top-level GET, so SameSite=Lax carries the cookie back. */
export const SSO_OIDC_STATE_COOKIE = '__Host-gh_sso';
/** SAML: the IdP POSTs the response cross-site, which only a SameSite=None cookie survives. */
export const SSO_SAML_STATE_COOKIE = '__Host-gh_sso_saml';

const KEY_KV = 'sso:state-key';
// Long enough for every in-flight sign-in; a new key only fails sign-ins started under the old one.
const KEY_TTL_MS = 7 * 86_400_000;

export interface SsoState {
  /** Connection id. */
  c: string;
  /** Mode the finished sign-in answers in. */
  m: 'bearer' | 'cookie';
  /** Expiry (ms since the epoch). */
  e: number;
  /** OIDC: state, PKCE verifier, nonce. */
  s?: string;
  v?: string;
  n?: string;
  /** SAML: the AuthnRequest id. */
  r?: string;
}

export function createStateSigner(kv: Kv, now: () => number) {
  async function key(): Promise<Buffer> {
    let value = await kv.get(KEY_KV);
    if (!value) {
      await kv.setIfAbsent(KEY_KV, randomBytes(32).toString('base64url'), KEY_TTL_MS);
      value = await kv.get(KEY_KV);
    }
    if (!value) throw new AppError('INTERNAL', 'no SSO state key');
    return Buffer.from(value, 'base64url');
  }

  return {
    async sign(state: SsoState): Promise<string> {
      const body = Buffer.from(JSON.stringify(state), 'utf8').toString('base64url');
      return `${body}.${createHmac('sha256', await key()).update(body).digest('base64url')}`;
    },

    /** The state of this connection, or SSO_STATE_INVALID (missing, forged, another connection's, expired). */
    async open(value: string | undefined, connectionId: string): Promise<SsoState> {
      const [body, mac, extra] = (value ?? '').split('.');
      if (!body || !mac || extra !== undefined || body.length > 4096) throw new AppError('SSO_STATE_INVALID');
      const expected = createHmac('sha256', await key()).update(body).digest('base64url');
      if (!constantTimeEqual(mac, expected)) throw new AppError('SSO_STATE_INVALID');
      let state: SsoState;
      try {
        state = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as SsoState;
      } catch {
        throw new AppError('SSO_STATE_INVALID');
      }
      if (state.c !== connectionId || typeof state.e !== 'number' || state.e <= now()) throw new AppError('SSO_STATE_INVALID');
      return state;
    },
  };
}

export type StateSigner = ReturnType<typeof createStateSigner>;
