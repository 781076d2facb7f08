/**
 * Signed-in users for feature tests: sign up, verify the emailed code, sign in, all through the
 * public API of a test app.
 */
import type { FastifyInstance } from 'fastify';
import type { MailMessage } from '../../src/identity/mailer.ts';

export const TEST_PASSWORD = 'correct horse battery staple 42';

export interface SignedInUser {
  email: string;
  userId: string;
  access: string;
  /** Authorization header for inject(). */
  auth: { authorization: string };
}

let ipCounter = 0;
/** A different documentation-range address per sign-up, so the per-IP sign-up limit never bites. */
const freshIp = (): string => {
  ipCounter += 1;
  return `198.51.${Math.floor(ipCounter / 250) % 250}.${(ipCounter % 250) + 1}`;
};

export async function signUpUser(app: FastifyInstance, mail: readonly MailMessage[], email: string): Promise<SignedInUser> {
  const signup = await app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
  if (signup.statusCode !== 202) throw new Error(`signup of ${email} answered ${signup.statusCode}: ${signup.body}`);
  const text = [...mail].reverse().find((m) => m.to === email && m.kind === 'verify-email')?.text ?? '';
  const code = /ghv_[A-Za-z0-9_-]{43}/.exec(text)?.[0];
  if (!code) throw new Error(`no verification code mailed to ${email}`);
  const verified = await app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } });
  if (verified.statusCode !== 200) throw new Error(`verification of ${email} answered ${verified.statusCode}`);
  const login = await app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: TEST_PASSWORD }, remoteAddress: freshIp() });
  if (login.statusCode !== 200) throw new Error(`login of ${email} answered ${login.statusCode}: ${login.body}`);
  const access = login.json<{ accessToken: string }>().accessToken;
  const me = await app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${access}` } });
  return { email, userId: me.json<{ id: string }>().id, access, auth: { authorization: `Bearer ${access}` } };
}
