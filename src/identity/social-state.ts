/**
 * Social sign-in state cookies (AUTH-8, see social.ts): the state, PKCE verifier, nonce and mode
 * of a started sign-in, HMAC-signed under a key every node shares through kv, bound to the
 * provider and expiring.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { constantTimeEqual } from '../crypto/compare.ts';
import { AppError } from '../server/errors.ts';
import type { Kv } from '../store/kv/types.ts';

const KEY_KV = 'social:state-key';
// Long enough for every in-flight sign-in; a new key only fails sign-ins started under the old one.
const KEY_TTL_MS = 7 * 86_400_000;

export type SocialMode = 'bearer' | 'cookie';

export interface StatePayload {
  p: string;
  s: string;
  v: string;
  n?: string;
  m: SocialMode;
  e: number;
}

export function createSocialState(deps: { kv: Kv; now: () => number }): { signState(payload: StatePayload): Promise<string>; openState(value: string | undefined, providerId: string): Promise<StatePayload> } {
  const { kv, now } = deps;

  /** The HMAC key of state cookies, shared by every node through kv (created by whichever node needs it first). */
  async function stateKey(): Promise<Buffer> {
    let key = await kv.get(KEY_KV);
    if (!key) {
      await kv.setIfAbsent(KEY_KV, randomBytes(32).toString('base64url'), KEY_TTL_MS);
      key = await kv.get(KEY_KV);
    }
    if (!key) throw new AppError('INTERNAL', 'no social state key');
    return Buffer.from(key, 'base64url');
  }

  async function signState(payload: StatePayload): Promise<string> {
    const body = Buffer.from(JSON.stringify(payload), 'utf8').toString('base64url');
    const mac = createHmac('sha256', await stateKey()).update(body).digest('base64url');
    return `${body}.${mac}`;
  }

  async function openState(value: string | undefined, providerId: string): Promise<StatePayload> {
    const [body, mac, extra] = (value ?? '').split('.');
    if (!body || !mac || extra !== undefined) throw new AppError('SOCIAL_STATE_INVALID');
    const expected = createHmac('sha256', await stateKey()).update(body).digest('base64url');
    if (!constantTimeEqual(mac, expected)) throw new AppError('SOCIAL_STATE_INVALID');
    const payload = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as StatePayload;
    if (payload.p !== providerId || payload.e <= now()) throw new AppError('SOCIAL_STATE_INVALID');
    return payload;
  }

  return { signState, openState };
}
