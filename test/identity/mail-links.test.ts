/**
 * Mails that carry a token also carry a link to the console page that takes it, on the node's own
 * public origin (server.publicUrl): the invitation (/console/orgs/accept), the email verification
 * (/console/sign-up), the password reset (/console/reset-password) and the email change
 * (/console/confirm-email), each with the token in ?token=. The code and the API instruction stay
 * in the mail for API users; the link's token is the mailed one and it works.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

const ORIGIN = 'https://gate.example.test';
let t: TestApp;
let n = 0;
const freshEmail = (tag: string): string => `${tag}-${++n}@example.test`;

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'server.publicUrl': `${ORIGIN}/some/path` } });
});
afterAll(async () => t.close());

async function mailTo(to: string, kind: string): Promise<string> {
  for (let i = 0; i < 100; i += 1) {
    await t.node.identity.mailer.flush();
    const text = [...t.mail].reverse().find((m) => m.to === to && m.kind === kind)?.text;
    if (text) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`no ${kind} mail to ${to}`);
}

/** The one link of the mail: on the node's public origin, to `path`, with only ?token=. */
function linkIn(text: string, path: string): { token: string } {
  const links = text.match(/https?:\/\/\S+\?\S+/g) ?? [];
  expect(links).toHaveLength(1);
  const url = new URL(links[0] ?? '');
  expect([url.origin, url.pathname, [...url.searchParams.keys()]]).toEqual([ORIGIN, path, ['token']]);
  return { token: url.searchParams.get('token') ?? '' };
}

describe('mail links to the console', () => {
  it('the verification mail links to /console/sign-up?token= on the public origin with the mailed code, which verifies the address', async () => {
    const email = freshEmail('verify');
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: TEST_PASSWORD } })).statusCode).toBe(202);
    const text = await mailTo(email, 'verify-email');
    const { token } = linkIn(text, '/console/sign-up');
    expect(token).toMatch(/^ghv_[A-Za-z0-9_-]{43}$/);
    // The code and the API instruction are still there for API users.
    expect(text).toContain(`\n${token}\n`);
    expect(text).toContain(`POST ${ORIGIN}/v1/auth/verify-email`);
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token } })).statusCode).toBe(200);
  });

  it('the password-reset mail links to /console/reset-password?token= on the public origin with the mailed code, which sets a new password', async () => {
    const user = await signUpUser(t.app, t.mail, freshEmail('reset'));
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', payload: { email: user.email } })).statusCode).toBe(202);
    const text = await mailTo(user.email, 'password-reset');
    const { token } = linkIn(text, '/console/reset-password');
    expect(token).toMatch(/^ghp_[A-Za-z0-9_-]{43}$/);
    expect(text).toContain(`\n${token}\n`);
    expect(text).toContain(`POST ${ORIGIN}/v1/auth/password-reset/confirm`);
    const confirmed = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', payload: { token, password: 'a brand new passphrase for the link test' } });
    expect(confirmed.statusCode).toBe(200);
  });

  it('the email-change mail links to /console/confirm-email?token= on the public origin with the mailed code, which moves the account', async () => {
    const user = await signUpUser(t.app, t.mail, freshEmail('mover'));
    const to = freshEmail('moved');
    expect((await t.app.inject({ method: 'POST', url: '/v1/me/email', headers: user.auth, payload: { email: to, password: TEST_PASSWORD } })).statusCode).toBe(202);
    const text = await mailTo(to, 'email-change');
    const { token } = linkIn(text, '/console/confirm-email');
    expect(token).toMatch(/^ghe_[A-Za-z0-9_-]{43}$/);
    expect(text).toContain(`\n${token}\n`);
    expect(text).toContain(`POST ${ORIGIN}/v1/auth/email-change/confirm`);
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/email-change/confirm', payload: { token } })).statusCode).toBe(200);
  });

  it('the invitation mail links to /console/orgs/accept?token= on the public origin with the mailed token, which the invited user accepts', async () => {
    const owner = await signUpUser(t.app, t.mail, freshEmail('owner'));
    const invited = await signUpUser(t.app, t.mail, freshEmail('invited'));
    const org = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Links' } })).json<{ id: string }>().id;
    const invite = await t.app.inject({ method: 'POST', url: `/v1/orgs/${org}/invitations`, headers: owner.auth, payload: { email: invited.email, role: 'viewer' } });
    expect(invite.statusCode).toBe(201);
    const text = await mailTo(invited.email, 'invitation');
    const { token } = linkIn(text, '/console/orgs/accept');
    expect(token).toMatch(/^ghi_[A-Za-z0-9_-]{65}$/);
    expect(text).toContain(`{"token": "${token}"}`);
    expect(text).toContain(`POST ${ORIGIN}/v1/invitations/accept`);
    const accepted = await t.app.inject({ method: 'POST', url: '/v1/invitations/accept', headers: invited.auth, payload: { token } });
    expect([accepted.statusCode, accepted.json<{ org: { id: string } }>().org.id]).toEqual([200, org]);
  });
});
