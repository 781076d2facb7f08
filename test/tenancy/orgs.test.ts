/**
 * Organizations, members, invitations and workspaces end to end (TEN-1), in-process on PGlite.
 */
import type { LightMyRequestResponse } from 'fastify';
import { TOTP, URI } from 'otpauth';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { TEST_PASSWORD, signUpUser, type SignedInUser } from '../support/users.ts';

let t: TestApp;
const clock = Date.parse('2026-11-22T12:00:00Z');
let owner: SignedInUser;
let admin: SignedInUser;
let editor: SignedInUser;
let viewer: SignedInUser;
let outsider: SignedInUser;

beforeAll(async () => {
  t = await createTestApp({ now: () => clock, overrides: { 'rateLimit.enabled': false } });
  owner = await signUpUser(t.app, t.mail, 'owner@example.com');
  admin = await signUpUser(t.app, t.mail, 'admin@example.com');
  editor = await signUpUser(t.app, t.mail, 'editor@example.com');
  viewer = await signUpUser(t.app, t.mail, 'viewer@example.com');
  outsider = await signUpUser(t.app, t.mail, 'outsider@example.com');
});
afterAll(async () => t.close());

type Method = 'GET' | 'POST' | 'PATCH' | 'PUT' | 'DELETE';
function call(user: SignedInUser, method: Method, url: string, payload?: object): Promise<LightMyRequestResponse> {
  return t.app.inject({ method, url, headers: user.auth, ...(payload ? { payload } : {}) });
}

function expectError(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json<{ error?: { code: string } }>().error?.code }).toEqual({ status, code });
}

function invitationToken(email: string): string {
  const text = [...t.mail].reverse().find((m) => m.to === email && m.kind === 'invitation')?.text ?? '';
  const token = /ghi_[A-Za-z0-9_-]{65}/.exec(text)?.[0];
  if (!token) throw new Error(`no invitation mailed to ${email}`);
  return token;
}

async function createOrg(user: SignedInUser, name = 'Acme'): Promise<string> {
  const res = await call(user, 'POST', '/v1/orgs', { name });
  expect(res.statusCode).toBe(201);
  return res.json<{ id: string }>().id;
}

async function invite(by: SignedInUser, org: string, who: SignedInUser, role: string): Promise<void> {
  const res = await call(by, 'POST', `/v1/orgs/${org}/invitations`, { email: who.email, role });
  expect(res.statusCode, res.body).toBe(201);
  const accepted = await call(who, 'POST', '/v1/invitations/accept', { token: invitationToken(who.email) });
  expect(accepted.statusCode, accepted.body).toBe(200);
}

/** An org with one member in each role. */
async function fullOrg(name = 'Full'): Promise<string> {
  const org = await createOrg(owner, name);
  await invite(owner, org, admin, 'admin');
  await invite(owner, org, editor, 'editor');
  await invite(owner, org, viewer, 'viewer');
  return org;
}

describe('organizations', () => {
  it('creates an org with the caller as owner, lists it for members only, hides it from others (404)', async () => {
    const org = await createOrg(owner, 'Listed');
    const mine = await call(owner, 'GET', '/v1/orgs');
    expect(mine.json().orgs).toContainEqual(expect.objectContaining({ id: org, name: 'Listed', role: 'owner' }));
    const theirs = await call(outsider, 'GET', '/v1/orgs');
    expect(theirs.json().orgs.map((o: { id: string }) => o.id)).not.toContain(org);
    expectError(await call(outsider, 'GET', `/v1/orgs/${org}`), 404, 'NOT_FOUND');
    const read = await call(owner, 'GET', `/v1/orgs/${org}`);
    expect(read.json()).toMatchObject({ id: org, name: 'Listed', role: 'owner' });
  });

  it('renames (admins and owners) and refuses names that are empty, too long or carry unknown fields', async () => {
    const org = await fullOrg('Rename me');
    expect((await call(admin, 'PATCH', `/v1/orgs/${org}`, { name: 'Renamed' })).json().name).toBe('Renamed');
    expectError(await call(editor, 'PATCH', `/v1/orgs/${org}`, { name: 'Nope' }), 403, 'FORBIDDEN');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}`, { name: '' }), 400, 'VALIDATION_FAILED');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}`, { name: 'x'.repeat(101) }), 400, 'VALIDATION_FAILED');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}`, { name: 'ok', tenant_id: org }), 400, 'VALIDATION_FAILED');
  });

  it('an org that requires MFA admits no session without a verified second factor (403 MFA_REQUIRED_BY_ORG); enabling it needs one', async () => {
    const org = await fullOrg('Strict');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}`, { requireMfa: true }), 403, 'MFA_REQUIRED_BY_ORG');
    expect((await call(owner, 'GET', `/v1/orgs/${org}`)).json().requireMfa).toBe(false);
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}`, {}), 400, 'VALIDATION_FAILED');
    // Turned on by an owner who has a factor (set here in the database), effective at once.
    await t.node.db.withTenant(org, (tx) => tx.query('update orgs set require_mfa = true'));
    await t.node.tenancy.authority.evictOrg(org);
    expectError(await call(viewer, 'GET', `/v1/orgs/${org}`), 403, 'MFA_REQUIRED_BY_ORG');
    expectError(await call(owner, 'GET', `/v1/orgs/${org}/members`), 403, 'MFA_REQUIRED_BY_ORG');
    // Outsiders still learn nothing.
    expectError(await call(outsider, 'GET', `/v1/orgs/${org}`), 404, 'NOT_FOUND');
  });

  it('admits a session that verified a second factor into an org that requires one (and still refuses the others)', async () => {
    const strict = await signUpUser(t.app, t.mail, 'strict-owner@example.com');
    const org = await createOrg(strict, 'Strict with MFA');
    await invite(strict, org, viewer, 'viewer');
    const start = await call(strict, 'POST', '/v1/me/mfa/totp', { password: TEST_PASSWORD });
    expect(start.statusCode).toBe(201);
    const { factorId, otpauthUri } = start.json<{ factorId: string; otpauthUri: string }>();
    const secret = URI.parse(otpauthUri) as TOTP;
    // Confirming the factor counts as a verified second factor for this session.
    expect((await call(strict, 'POST', '/v1/me/mfa/totp/confirm', { factorId, code: secret.generate({ timestamp: clock }) })).statusCode).toBe(200);
    const on = await call(strict, 'PATCH', `/v1/orgs/${org}`, { requireMfa: true });
    expect(on.statusCode, on.body).toBe(200);
    expect(on.json().requireMfa).toBe(true);
    expect((await call(strict, 'GET', `/v1/orgs/${org}/members`)).statusCode).toBe(200);
    expectError(await call(viewer, 'GET', `/v1/orgs/${org}`), 403, 'MFA_REQUIRED_BY_ORG');
  });

  it('answers unknown and malformed org ids with 404, never 500', async () => {
    expectError(await call(owner, 'GET', '/v1/orgs/00000000-0000-4000-8000-00000000dead'), 404, 'NOT_FOUND');
    expectError(await call(owner, 'GET', '/v1/orgs/not-a-uuid'), 404, 'NOT_FOUND');
    expectError(await call(owner, 'GET', "/v1/orgs/1'%20or%20'1'='1"), 404, 'NOT_FOUND');
    // The platform tenant is not an org anybody is a member of.
    expectError(await call(owner, 'GET', '/v1/orgs/00000000-0000-4000-8000-000000000000'), 404, 'NOT_FOUND');
  });

  it('caps the organizations one user may own', async () => {
    const capped = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'tenancy.maxOrgsPerUser': 2 } });
    try {
      const u = await signUpUser(capped.app, capped.mail, 'capped@example.com');
      for (let i = 0; i < 2; i += 1) expect((await capped.app.inject({ method: 'POST', url: '/v1/orgs', headers: u.auth, payload: { name: `o${i}` } })).statusCode).toBe(201);
      const third = await capped.app.inject({ method: 'POST', url: '/v1/orgs', headers: u.auth, payload: { name: 'o3' } });
      expectError(third, 409, 'TENANCY_LIMIT_REACHED');
    } finally {
      await capped.close();
    }
  });

  it('deletes an org (owners only) with its rows, and destroys its data keys', async () => {
    const org = await fullOrg('Doomed');
    const sealed = await t.node.keyring.seal({ tenantId: org }, { table: 'orgs', column: 'name', rowId: org }, 'secret');
    expectError(await call(admin, 'DELETE', `/v1/orgs/${org}`), 403, 'FORBIDDEN');
    const res = await call(owner, 'DELETE', `/v1/orgs/${org}`);
    expect(res.statusCode).toBe(204);
    expectError(await call(owner, 'GET', `/v1/orgs/${org}`), 404, 'NOT_FOUND');
    const left = await t.node.db.asOwner((tx) => tx.query<{ n: number }>('select (select count(*) from memberships where tenant_id = $1)::int + (select count(*) from orgs where tenant_id = $1)::int as n', [org]));
    expect(left.rows[0]?.n).toBe(0);
    await expect(t.node.keyring.open({ tenantId: org }, { table: 'orgs', column: 'name', rowId: org }, sealed)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
  });
});

describe('members and roles', () => {
  it('lists members with roles', async () => {
    const org = await fullOrg('Members');
    const res = await call(viewer, 'GET', `/v1/orgs/${org}/members`);
    expect(res.statusCode).toBe(200);
    const roles = Object.fromEntries(res.json().members.map((m: { email: string; role: string }) => [m.email, m.role]));
    expect(roles).toEqual({ 'owner@example.com': 'owner', 'admin@example.com': 'admin', 'editor@example.com': 'editor', 'viewer@example.com': 'viewer' });
  });

  it('refuses granting, inviting to or changing a role above your own', async () => {
    const org = await fullOrg('Ceiling');
    expectError(await call(admin, 'PATCH', `/v1/orgs/${org}/members/${viewer.userId}`, { role: 'owner' }), 403, 'ROLE_ABOVE_OWN');
    expectError(await call(admin, 'PATCH', `/v1/orgs/${org}/members/${owner.userId}`, { role: 'viewer' }), 403, 'ROLE_ABOVE_OWN');
    expectError(await call(admin, 'DELETE', `/v1/orgs/${org}/members/${owner.userId}`), 403, 'ROLE_ABOVE_OWN');
    expectError(await call(admin, 'POST', `/v1/orgs/${org}/invitations`, { email: 'boss@example.com', role: 'owner' }), 403, 'ROLE_ABOVE_OWN');
    expectError(await call(editor, 'PATCH', `/v1/orgs/${org}/members/${viewer.userId}`, { role: 'editor' }), 403, 'FORBIDDEN');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}/members/${viewer.userId}`, { role: 'superuser' }), 400, 'VALIDATION_FAILED');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}/members/${outsider.userId}`, { role: 'viewer' }), 404, 'NOT_A_MEMBER');
    const ok = await call(admin, 'PATCH', `/v1/orgs/${org}/members/${viewer.userId}`, { role: 'editor' });
    expect(ok.json()).toMatchObject({ userId: viewer.userId, role: 'editor' });
  });

  it('keeps the last owner: no leaving, no self-demotion, no removal; transfer first', async () => {
    const org = await fullOrg('Last owner');
    expectError(await call(owner, 'POST', `/v1/orgs/${org}/leave`, {}), 409, 'LAST_OWNER');
    expectError(await call(owner, 'PATCH', `/v1/orgs/${org}/members/${owner.userId}`, { role: 'admin' }), 409, 'LAST_OWNER');
    expectError(await call(owner, 'DELETE', `/v1/orgs/${org}/members/${owner.userId}`), 409, 'LAST_OWNER');
    expectError(await call(admin, 'POST', `/v1/orgs/${org}/transfer-ownership`, { userId: admin.userId }), 403, 'FORBIDDEN');
    expectError(await call(owner, 'POST', `/v1/orgs/${org}/transfer-ownership`, { userId: outsider.userId }), 404, 'NOT_A_MEMBER');
    expect((await call(owner, 'POST', `/v1/orgs/${org}/transfer-ownership`, { userId: admin.userId })).statusCode).toBe(204);
    const members = (await call(admin, 'GET', `/v1/orgs/${org}/members`)).json().members as { userId: string; role: string }[];
    expect(members.find((m) => m.userId === admin.userId)?.role).toBe('owner');
    expect(members.find((m) => m.userId === owner.userId)?.role).toBe('admin');
    expect((await call(owner, 'POST', `/v1/orgs/${org}/leave`, {})).statusCode).toBe(204);
    expectError(await call(owner, 'GET', `/v1/orgs/${org}`), 404, 'NOT_FOUND');
  });

  it('two owners demoting each other at once: one wins, the loser no longer has the authority (no lost update)', async () => {
    const org = await fullOrg('Race');
    await call(owner, 'PATCH', `/v1/orgs/${org}/members/${admin.userId}`, { role: 'owner' });
    const [a, b] = await Promise.all([
      call(owner, 'PATCH', `/v1/orgs/${org}/members/${admin.userId}`, { role: 'viewer' }),
      call(admin, 'PATCH', `/v1/orgs/${org}/members/${owner.userId}`, { role: 'viewer' }),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([200, 403]);
    const owners = await t.node.db.asOwner((tx) => tx.query<{ role: string; n: number }>("select count(*)::int as n from memberships where tenant_id = $1 and role = 'owner'", [org]));
    expect(owners.rows[0]?.n).toBe(1);
  });

  it('two owners leaving at once: exactly one leaves, the other is the last owner (409)', async () => {
    const org = await fullOrg('Race to leave');
    await call(owner, 'PATCH', `/v1/orgs/${org}/members/${admin.userId}`, { role: 'owner' });
    const [a, b] = await Promise.all([call(owner, 'POST', `/v1/orgs/${org}/leave`, {}), call(admin, 'POST', `/v1/orgs/${org}/leave`, {})]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([204, 409]);
    expect([a, b].find((r) => r.statusCode === 409)?.json().error.code).toBe('LAST_OWNER');
    const owners = await t.node.db.asOwner((tx) => tx.query<{ n: number }>("select count(*)::int as n from memberships where tenant_id = $1 and role = 'owner'", [org]));
    expect(owners.rows[0]?.n).toBe(1);
  });

  it('applies a removal or demotion to the very next request of a still-valid access token', async () => {
    const org = await fullOrg('Current');
    expect((await call(editor, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'before' })).statusCode).toBe(403);
    expect((await call(admin, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'allowed' })).statusCode).toBe(201);
    await call(owner, 'PATCH', `/v1/orgs/${org}/members/${admin.userId}`, { role: 'viewer' });
    expectError(await call(admin, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'demoted' }), 403, 'FORBIDDEN');
    expect((await call(viewer, 'GET', `/v1/orgs/${org}`)).statusCode).toBe(200);
    expect((await call(owner, 'DELETE', `/v1/orgs/${org}/members/${viewer.userId}`)).statusCode).toBe(204);
    expectError(await call(viewer, 'GET', `/v1/orgs/${org}`), 404, 'NOT_FOUND');
  });
});

describe('invitations', () => {
  it('emails a single-use token bound to the invited, verified address', async () => {
    const org = await createOrg(owner, 'Invites');
    const sent = await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: 'Viewer@Example.com', role: 'viewer' });
    expect(sent.statusCode).toBe(201);
    expect(sent.json()).toMatchObject({ email: 'viewer@example.com', role: 'viewer', status: 'pending' });
    expect(sent.body).not.toContain('ghi_');
    const token = invitationToken('viewer@example.com');
    // Another signed-in account cannot use it.
    expectError(await call(outsider, 'POST', '/v1/invitations/accept', { token }), 403, 'INVITATION_EMAIL_MISMATCH');
    const ok = await call(viewer, 'POST', '/v1/invitations/accept', { token });
    expect(ok.json()).toEqual({ org: { id: org, name: 'Invites', role: 'viewer' } });
    expectError(await call(viewer, 'POST', '/v1/invitations/accept', { token }), 400, 'INVITATION_INVALID');
    const stored = await t.node.db.asOwner((tx) => tx.query<{ token_hash: string }>('select token_hash from invitations where tenant_id = $1', [org]));
    expect(JSON.stringify(stored.rows)).not.toContain(token.slice(4));
    const list = await call(owner, 'GET', `/v1/orgs/${org}/invitations`);
    expect(list.json().invitations[0]).toMatchObject({ status: 'accepted' });
  });

  it('refuses forged, garbled, revoked and expired tokens, and inviting a member', async () => {
    const org = await createOrg(owner, 'Invite faults');
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: 'ghi_' + 'A'.repeat(65) }), 400, 'INVITATION_INVALID');
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: 'not-a-token-at-all' }), 400, 'INVITATION_INVALID');
    await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: editor.email, role: 'editor' });
    const real = invitationToken(editor.email);
    const forged = real.slice(0, -5) + (real.endsWith('AAAAA') ? 'BBBBB' : 'AAAAA');
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: forged }), 400, 'INVITATION_INVALID');
    const id = (await call(owner, 'GET', `/v1/orgs/${org}/invitations`)).json().invitations[0].id as string;
    expect((await call(owner, 'DELETE', `/v1/orgs/${org}/invitations/${id}`)).statusCode).toBe(204);
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: real }), 400, 'INVITATION_INVALID');
    await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: editor.email, role: 'editor' });
    const later = invitationToken(editor.email);
    // Expiry is checked against the node's clock; the stored deadline is moved into the past.
    await t.node.db.asOwner((tx) => tx.query("update invitations set expires_at = $2 where tenant_id = $1 and accepted_at is null and revoked_at is null", [org, new Date(clock - 1000)]));
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: later }), 400, 'INVITATION_INVALID');
    expectError(await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: owner.email, role: 'viewer' }), 409, 'ALREADY_MEMBER');
    expectError(await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: 'nope', role: 'viewer' }), 400, 'VALIDATION_FAILED');
    expectError(await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: 'x@example.com', role: 'root' }), 400, 'VALIDATION_FAILED');
  });

  it('attack: a forged token naming a deleted org is refused (400) without creating a data key for it', async () => {
    const gone = await createOrg(owner, 'Gone');
    expect((await call(owner, 'DELETE', `/v1/orgs/${gone}`)).statusCode).toBe(204);
    const forged = 'ghi_' + Buffer.from(gone.replace(/-/g, ''), 'hex').toString('base64url') + 'A'.repeat(43);
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: forged }), 400, 'INVITATION_INVALID');
    const keys = await t.node.db.asOwner((tx) => tx.query<{ n: number }>("select count(*)::int as n from data_keys where tenant_id = $1 and state = 'active'", [gone]));
    expect(keys.rows[0]?.n).toBe(0);
  });

  it('replaces a pending invitation to the same address: only the newest link works', async () => {
    const org = await createOrg(owner, 'Reinvite');
    await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: editor.email, role: 'viewer' });
    const first = invitationToken(editor.email);
    await call(owner, 'POST', `/v1/orgs/${org}/invitations`, { email: editor.email, role: 'editor' });
    const second = invitationToken(editor.email);
    expectError(await call(editor, 'POST', '/v1/invitations/accept', { token: first }), 400, 'INVITATION_INVALID');
    expect((await call(editor, 'POST', '/v1/invitations/accept', { token: second })).json().org.role).toBe('editor');
  });
});

describe('workspaces', () => {
  it('creates, reads, renames and deletes workspaces by role', async () => {
    const org = await fullOrg('Spaces');
    expectError(await call(editor, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'no' }), 403, 'FORBIDDEN');
    const created = await call(admin, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'Prod' });
    expect(created.statusCode).toBe(201);
    const ws = created.json().id as string;
    expect((await call(viewer, 'GET', `/v1/orgs/${org}/workspaces`)).json().workspaces.map((w: { id: string }) => w.id)).toEqual([ws]);
    expect((await call(viewer, 'GET', `/v1/orgs/${org}/workspaces/${ws}`)).json().name).toBe('Prod');
    expect((await call(admin, 'PATCH', `/v1/orgs/${org}/workspaces/${ws}`, { name: 'Production' })).json().name).toBe('Production');
    expectError(await call(owner, 'GET', `/v1/orgs/${org}/workspaces/00000000-0000-4000-8000-00000000beef`), 404, 'NOT_FOUND');
    expectError(await call(owner, 'GET', `/v1/orgs/${org}/workspaces/nope`), 404, 'NOT_FOUND');
    expect((await call(admin, 'DELETE', `/v1/orgs/${org}/workspaces/${ws}`)).statusCode).toBe(204);
    expectError(await call(owner, 'GET', `/v1/orgs/${org}/workspaces/${ws}`), 404, 'NOT_FOUND');
  });

  it('narrows a member in one workspace, never widens, and the narrowing applies at once (reading the workspace answers the effective role)', async () => {
    const org = await fullOrg('Narrow');
    const a = (await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'A' })).json().id as string;
    const b = (await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'B' })).json().id as string;
    const set = await call(owner, 'PUT', `/v1/orgs/${org}/workspaces/${a}/members/${admin.userId}`, { role: 'viewer' });
    expect(set.json()).toMatchObject({ orgRole: 'admin', workspaceRole: 'viewer', effectiveRole: 'viewer' });
    // Reading a workspace tells the caller their effective role there (what the console shows controls by).
    expect((await call(admin, 'GET', `/v1/orgs/${org}/workspaces/${a}`)).json()).toMatchObject({ id: a, role: 'viewer' });
    expect((await call(admin, 'GET', `/v1/orgs/${org}/workspaces/${b}`)).json()).toMatchObject({ id: b, role: 'admin' });
    expect((await call(viewer, 'GET', `/v1/orgs/${org}/workspaces/${b}`)).json()).toMatchObject({ id: b, role: 'viewer' });
    expectError(await call(admin, 'PATCH', `/v1/orgs/${org}/workspaces/${a}`, { name: 'x' }), 403, 'FORBIDDEN');
    expect((await call(admin, 'PATCH', `/v1/orgs/${org}/workspaces/${b}`, { name: 'B2' })).statusCode).toBe(200);
    expectError(await call(owner, 'PUT', `/v1/orgs/${org}/workspaces/${a}/members/${viewer.userId}`, { role: 'admin' }), 400, 'BAD_REQUEST');
    expectError(await call(admin, 'PUT', `/v1/orgs/${org}/workspaces/${b}/members/${owner.userId}`, { role: 'viewer' }), 403, 'ROLE_ABOVE_OWN');
    const members = (await call(viewer, 'GET', `/v1/orgs/${org}/workspaces/${a}/members`)).json().members as { userId: string; effectiveRole: string }[];
    expect(members.find((m) => m.userId === admin.userId)?.effectiveRole).toBe('viewer');
    const cleared = await call(owner, 'DELETE', `/v1/orgs/${org}/workspaces/${a}/members/${admin.userId}`);
    expect(cleared.json()).toMatchObject({ workspaceRole: null, effectiveRole: 'admin' });
    expect((await call(admin, 'GET', `/v1/orgs/${org}/workspaces/${a}`)).json()).toMatchObject({ role: 'admin' });
    expect((await call(admin, 'PATCH', `/v1/orgs/${org}/workspaces/${a}`, { name: 'A2' })).statusCode).toBe(200);
  });
});

describe('narrowing one\'s own workspace role', () => {
  it('attack: an owner (or admin) narrowing their own workspace role is refused 409 SELF_NARROWING_REFUSED, and keeps managing it', async () => {
    const org = await fullOrg('Self narrow');
    const ws = (await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'W' })).json().id as string;
    for (const [who, narrower] of [
      [owner, 'viewer'],
      [owner, 'editor'],
      [owner, 'admin'],
      [admin, 'viewer'],
    ] as const) {
      expectError(await call(who, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/members/${who.userId}`, { role: narrower }), 409, 'SELF_NARROWING_REFUSED');
    }
    // Nothing was stored: both still manage the workspace's roles with their org roles.
    const members = (await call(owner, 'GET', `/v1/orgs/${org}/workspaces/${ws}/members`)).json().members as { userId: string; workspaceRole: string | null }[];
    expect(members.filter((m) => m.workspaceRole !== null)).toEqual([]);
    expect((await call(admin, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/members/${editor.userId}`, { role: 'viewer' })).statusCode).toBe(200);
    // Setting one's own role to the org role narrows nothing and is allowed.
    expect((await call(owner, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`, { role: 'owner' })).json()).toMatchObject({ effectiveRole: 'owner' });
    expect((await call(owner, 'DELETE', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`)).json()).toMatchObject({ workspaceRole: null, effectiveRole: 'owner' });
  });

  it('repair: an owner narrowed by another owner cannot undo it, nor can an admin; the other owner can', async () => {
    const org = await fullOrg('Two owners');
    await invite(owner, org, outsider, 'owner');
    const ws = (await call(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'W' })).json().id as string;
    expect((await call(outsider, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`, { role: 'viewer' })).json()).toMatchObject({ effectiveRole: 'viewer' });
    expectError(await call(owner, 'DELETE', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`), 403, 'FORBIDDEN');
    expectError(await call(admin, 'DELETE', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`), 403, 'ROLE_ABOVE_OWN');
    expect((await call(outsider, 'DELETE', `/v1/orgs/${org}/workspaces/${ws}/members/${owner.userId}`)).json()).toMatchObject({ workspaceRole: null, effectiveRole: 'owner' });
    expect((await call(owner, 'PATCH', `/v1/orgs/${org}/workspaces/${ws}`, { name: 'W2' })).statusCode).toBe(200);
  });
});

describe('account deletion and memberships', () => {
  it('refuses to delete the account of an org\'s last owner (409 LAST_OWNER), and removes memberships once deleted', async () => {
    const leaving = await signUpUser(t.app, t.mail, 'leaving@example.com');
    const org = await createOrg(leaving, 'Orphan risk');
    await invite(leaving, org, viewer, 'viewer');
    const del = (): Promise<LightMyRequestResponse> => t.app.inject({ method: 'DELETE', url: '/v1/me', headers: leaving.auth, payload: { password: TEST_PASSWORD } });
    const refused = await del();
    expectError(refused, 409, 'LAST_OWNER');
    expect(refused.json().error.message).toContain('Orphan risk');
    // Nothing happened: the account still works.
    expect((await t.app.inject({ url: '/v1/me', headers: leaving.auth })).statusCode).toBe(200);
    expect((await call(leaving, 'POST', `/v1/orgs/${org}/transfer-ownership`, { userId: viewer.userId })).statusCode).toBe(204);
    expect((await del()).statusCode).toBe(200);
    const members = (await call(viewer, 'GET', `/v1/orgs/${org}/members`)).json().members as { userId: string }[];
    expect(members.map((m) => m.userId)).toEqual([viewer.userId]);
  });
});
