/**
 * The new-engineer guide's worked example (docs/architecture.md) is real: the fixture feature in
 * test/support/example-module.ts, shown verbatim in the guide, runs on a node through the module
 * contract with one extra entry in the module list, and everything it declares takes effect.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_MODULES } from '../../src/features.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { NOTES, notesModule } from '../support/example-module.ts';
import { signUpUser, TEST_PASSWORD } from '../support/users.ts';

const MARKER = '// --- guide example starts here ---\n';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp({ modules: [...FEATURE_MODULES, notesModule], overrides: { 'rateLimit.enabled': false } });
});
afterAll(async () => t?.close());

describe('the guide\'s example feature', () => {
  it('docs/architecture.md shows the example module verbatim', () => {
    const source = readFileSync(new URL('../support/example-module.ts', import.meta.url), 'utf8');
    const guide = readFileSync(new URL('../../docs/architecture.md', import.meta.url), 'utf8');
    expect(source).toContain(MARKER);
    const example = source.slice(source.indexOf(MARKER) + MARKER.length).trimEnd();
    expect(example.length).toBeGreaterThan(500);
    expect(guide).toContain(example);
  });

  it('serves its route behind its guard, with its own error code', async () => {
    const anonymous = await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: 'hi' } });
    expect(anonymous.statusCode).toBe(401);
    const user = await signUpUser(t.app, t.mail, 'notes@example.com');
    for (const n of [1, 2, 3]) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: `note ${n}` }, headers: user.auth });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toEqual({ count: n });
    }
    const full = await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: 'one too many' }, headers: user.auth });
    expect(full.statusCode).toBe(409);
    expect(full.json().error.code).toBe('NOTES_FULL');
    const bad = await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: '' }, headers: user.auth });
    expect(bad.statusCode).toBe(400);
    expect(t.node.use(NOTES).count(user.userId)).toBe(3);
  });

  it('records its declared audit action, which the audit log accepts beside the others', async () => {
    const user = await signUpUser(t.app, t.mail, 'audited-notes@example.com');
    await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: 'audited' }, headers: user.auth });
    const { events } = await t.node.audit.list(PLATFORM_TENANT_ID, { action: 'notes.added', limit: 50 });
    expect(events.filter((e) => e.target?.id === user.userId).map((e) => e.action)).toEqual(['notes.added']);
    expect(t.node.audit.actions.has('notes.added')).toBe(true);
    expect(t.node.audit.actions.has('org.created')).toBe(true);
  });

  it('its hook runs when identity deletes an account, and its job is listed', async () => {
    const user = await signUpUser(t.app, t.mail, 'leaving-notes@example.com');
    await t.app.inject({ method: 'POST', url: '/v1/me/notes', payload: { text: 'remember me' }, headers: user.auth });
    expect(t.node.use(NOTES).count(user.userId)).toBe(1);
    const gone = await t.app.inject({ method: 'DELETE', url: '/v1/me', payload: { password: TEST_PASSWORD }, headers: user.auth });
    expect(gone.statusCode).toBe(200);
    expect(t.node.use(NOTES).count(user.userId)).toBe(0);
    expect(t.node.jobs.map((j) => j.name)).toContain('notes.tally');
    expect(t.node.features.map((f) => f.id)).toContain('notes');
  });
});
