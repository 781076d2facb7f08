/**
 * More controls of the trust report (OPS-4) with a live check: each test turns the control off or
 * breaks it and sees the entry change state; the report never says active for a broken control.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createOrgAndWorkspace } from '../support/gateway.ts';
import { signUpUser } from '../support/users.ts';
import { GATEWAY } from '../../src/gateway/index.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { TRUST, type ControlState } from '../../src/trust/index.ts';

async function entry(t: TestApp, control: string): Promise<{ state: ControlState; text: string }> {
  const { report } = await t.node.use(TRUST).generate();
  const found = report.controls.find((c) => c.control === control);
  if (!found) throw new Error(`no entry for ${control}`);
  return { state: found.state, text: JSON.stringify(found.checks) };
}

/** Answers the checks' self-requests that `match` with `fake` (a broken hook, plugin or route). */
function fakeResponses(t: TestApp, match: (opts: InjectOptions) => boolean, fake: { statusCode: number; body: string }): () => void {
  const original = t.app.inject.bind(t.app);
  t.app.inject = (async (opts: InjectOptions) => (match(opts) ? { ...fake, headers: {}, json: () => JSON.parse(fake.body) as unknown } : original(opts))) as never;
  return () => {
    t.app.inject = original as never;
  };
}

let t: TestApp;
let skewMs = 0;
const overrides: Record<string, unknown> = {};
beforeAll(async () => {
  t = await createTestApp({ overrides, reloadable: true, now: () => Date.now() + skewMs });
}, 120_000);
afterAll(async () => t?.close());

describe('trust report: more controls with a live check, never active when broken', () => {
  it('EDGE-4: a body route without a body schema, or a malformed request not refused in the error envelope, makes it failed', async () => {
    const ok = await entry(t, 'EDGE-4');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('with a body that is not JSON: 400 INVALID_JSON');
    const routes = t.app.gatehouse.routes;
    routes.push({ method: 'POST', url: '/v1/schemaless', guard: { kind: 'public' }, permission: null, rateCategory: 'write', summary: 'x', hasBody: false, feature: 'x' } as never);
    try {
      const broken = await entry(t, 'EDGE-4');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('POST /v1/schemaless');
    } finally {
      routes.pop();
    }
    const restore = fakeResponses(t, (o) => String(o.url).includes('unknown-path'), { statusCode: 200, body: '<html>not found</html>' });
    try {
      expect((await entry(t, 'EDGE-4')).state).toBe('failed');
    } finally {
      restore();
    }
    expect((await entry(t, 'EDGE-4')).state).toBe('active');
  });

  it('AUDIT-1: an append-only trigger disabled in the database makes it failed', async () => {
    expect((await entry(t, 'AUDIT-1')).state).toBe('active');
    await t.node.db.asOwner((tx) => tx.query('alter table audit_events disable trigger audit_events_append_only'));
    try {
      const broken = await entry(t, 'AUDIT-1');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('audit_events_append_only disabled');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('alter table audit_events enable trigger audit_events_append_only'));
    }
    expect((await entry(t, 'AUDIT-1')).state).toBe('active');
  });

  it('AUDIT-3: an export the published keys do not verify (the audit key missing from the JWKS) makes it failed', async () => {
    expect((await entry(t, 'AUDIT-3')).state).toBe('active');
    const restore = fakeResponses(t, (o) => o.url === '/.well-known/jwks.json', { statusCode: 200, body: '{"keys":[]}' });
    try {
      const broken = await entry(t, 'AUDIT-3');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('UNTRUSTED_KEY');
    } finally {
      restore();
    }
  });

  it('AUDIT-4: events older than the retention still kept make it failed', async () => {
    expect((await entry(t, 'AUDIT-4')).state).toBe('active');
    skewMs = 400 * 86_400_000;
    try {
      const broken = await entry(t, 'AUDIT-4');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('retention is not being applied');
    } finally {
      skewMs = 0;
    }
  });

  it('AUTH-1: a stored password that is not an Argon2id hash makes it failed', async () => {
    const user = await signUpUser(t.app, t.mail, 'trust-password@example.com');
    expect((await entry(t, 'AUTH-1')).state).toBe('active');
    const { rows } = await t.node.db.asOwner((tx) => tx.query<{ h: string }>('select password_hash as h from users where id = $1', [user.userId]));
    await t.node.db.asOwner((tx) => tx.query("update users set password_hash = '$2b$10$abcdefghijklmnopqrstuuvwxyzabcdefghijklmnopqrstuvwxyz01' where id = $1", [user.userId]));
    try {
      const broken = await entry(t, 'AUTH-1');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('1 in another form');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('update users set password_hash = $1 where id = $2', [rows[0]?.h, user.userId]));
    }
    expect((await entry(t, 'AUTH-1')).state).toBe('active');
  });

  it('AUTH-4: a cookie request let through without a CSRF token or from an unlisted origin makes it failed', async () => {
    const ok = await entry(t, 'AUTH-4');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('403 CSRF_FAILED');
    // A broken CSRF check: the cookie request reaches the session verifier instead.
    const restore = fakeResponses(t, (o) => String((o.headers as Record<string, string> | undefined)?.cookie ?? '').includes('gh_access'), { statusCode: 401, body: '{"error":{"code":"UNAUTHENTICATED","message":"x"}}' });
    try {
      expect((await entry(t, 'AUTH-4')).state).toBe('failed');
    } finally {
      restore();
    }
  });

  it('AUTH-8: no provider is off; a provider without a client secret or plain HTTP allowed is misconfigured; reloaded secrets make it active', async () => {
    expect((await entry(t, 'AUTH-8')).state).toBe('off');
    overrides['social.providers'] = [{ id: 'google', preset: 'google', clientId: 'gatehouse-client' }];
    try {
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'AUTH-8')).state).toBe('misconfigured');
      overrides['social.clientSecrets'] = { google: 'client-secret-0123456789' };
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'AUTH-8')).state).toBe('active');
      overrides['social.allowInsecureRequests'] = true;
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'AUTH-8')).state).toBe('misconfigured');
    } finally {
      delete overrides['social.providers'];
      delete overrides['social.clientSecrets'];
      delete overrides['social.allowInsecureRequests'];
      await t.node.use(TRUST).reload('api');
    }
    expect((await entry(t, 'AUTH-8')).state).toBe('off');
  });

  it('AUTH-9: no connection is off; an enabled SAML connection is active until every IdP certificate of it has expired, then failed', async () => {
    expect((await entry(t, 'AUTH-9')).state).toBe('off');
    const owner = await signUpUser(t.app, t.mail, 'trust-sso@example.com');
    const { org } = await createOrgAndWorkspace(t, owner, 'Trust SSO');
    const dir = mkdtempSync(join(tmpdir(), 'gh-trust-saml-'));
    // prettier-ignore
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3', '-subj', '/CN=idp.example.com', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
    const cert = readFileSync(join(dir, 'c.pem'), 'utf8');
    await t.node.db.withTenant(org, (tx) =>
      tx.query("insert into sso_connections (id, tenant_id, kind, name, default_role, saml_idp_entity_id, saml_sso_url, saml_idp_certs, created_by) values ($1, $2, 'saml', 'Trust IdP', 'viewer', 'https://idp.example.com', 'https://idp.example.com/sso', $3, $4)", [randomUUID(), org, [cert], owner.userId]),
    );
    const ok = await entry(t, 'AUTH-9');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('1 SAML');
    skewMs = 10 * 86_400_000;
    try {
      const broken = await entry(t, 'AUTH-9');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('has expired');
    } finally {
      skewMs = 0;
    }
  }, 60_000);

  it('DATA-3: a shredded key that still opens, or a deleted account whose personal-data key survives, makes it failed', async () => {
    const ok = await entry(t, 'DATA-3');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('opened: KEY_DESTROYED');
    const keyring = t.node.keyring;
    // Shredding broken in the database: an update that would destroy a key is silently skipped.
    await t.node.db.asOwner(async (tx) => {
      await tx.query('create function trust_test_keep_keys() returns trigger language plpgsql as $$ begin return null; end $$');
      await tx.query("create trigger trust_test_keep_keys before update on data_keys for each row when (new.state = 'destroyed') execute function trust_test_keep_keys()");
    });
    try {
      const broken = await entry(t, 'DATA-3');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('its 0 key(s) destroyed, then opened: still opened');
    } finally {
      await t.node.db.asOwner(async (tx) => {
        await tx.query('drop trigger trust_test_keep_keys on data_keys');
        await tx.query('drop function trust_test_keep_keys()');
      });
    }
    const user = await signUpUser(t.app, t.mail, 'trust-shred@example.com');
    await keyring.activeDekId({ tenantId: PLATFORM_TENANT_ID, subjectId: user.userId });
    await t.node.db.asOwner((tx) => tx.query("update users set status = 'deleted' where id = $1", [user.userId]));
    const survived = await entry(t, 'DATA-3');
    expect(survived.state).toBe('failed');
    expect(survived.text).toContain('1 of them with a personal-data key not destroyed');
    await keyring.destroyKeys({ tenantId: PLATFORM_TENANT_ID, subjectId: user.userId });
    expect((await entry(t, 'DATA-3')).state).toBe('active');
  });

  it('DATA-3: generating the report leaves no data key behind (the canary is shredded in a transaction rolled back)', async () => {
    const keys = async () =>
      (await t.node.db.asOwner((tx) => tx.query<{ n: number; destroyed: number }>("select count(*)::int as n, count(*) filter (where state = 'destroyed')::int as destroyed from data_keys"))).rows[0];
    const before = await keys();
    const first = await entry(t, 'DATA-3');
    const second = await entry(t, 'DATA-3');
    for (const r of [first, second]) {
      expect(r.state).toBe('active');
      expect(r.text).toContain('its 1 key(s) destroyed, then opened: KEY_DESTROYED');
    }
    expect(await keys()).toEqual(before);
    // Nor does the probe leave its canary key in this node's cache: sealing still works for the platform.
    const sealed = await t.node.keyring.seal({ tenantId: PLATFORM_TENANT_ID }, { table: 't', column: 'c', rowId: 'r' }, 'after the probe');
    expect((await t.node.keyring.open({ tenantId: PLATFORM_TENANT_ID }, { table: 't', column: 'c', rowId: 'r' }, sealed)).toString()).toBe('after the probe');
  });

  it('AUTH-7: a TOTP secret stored readable makes it failed', async () => {
    expect((await entry(t, 'AUTH-7')).state).toBe('active');
    const user = await signUpUser(t.app, t.mail, 'trust-mfa@example.com');
    const id = randomUUID();
    await t.node.db.asOwner((tx) => tx.query("insert into mfa_factors (id, user_id, kind, secret_sealed) values ($1, $2, 'totp', 'JBSWY3DPEHPK3PXP')", [id, user.userId]));
    try {
      const broken = await entry(t, 'AUTH-7');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('1 TOTP factors, 0 with the secret sealed');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('delete from mfa_factors where id = $1', [id]));
    }
    expect((await entry(t, 'AUTH-7')).state).toBe('active');
  });

  it('GW-3: breaker states are in the evidence; a budget reservation shorter than the longest gateway call is misconfigured', async () => {
    const ok = await entry(t, 'GW-3');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('all closed');
    const proxy = t.node.use(GATEWAY).proxy;
    const states = proxy.breakerStates.bind(proxy);
    (proxy as { breakerStates: unknown }).breakerStates = () => [['platform:openai', 'open']];
    try {
      expect((await entry(t, 'GW-3')).text).toContain('platform:openai open');
    } finally {
      (proxy as { breakerStates: unknown }).breakerStates = states;
    }
    overrides['budgets.reservationTtlSeconds'] = 60;
    try {
      await t.node.use(TRUST).reload('api');
      const short = await entry(t, 'GW-3');
      expect(short.state).toBe('misconfigured');
      expect(short.text).toContain('can outlive its budget reservation');
    } finally {
      delete overrides['budgets.reservationTtlSeconds'];
      await t.node.use(TRUST).reload('api');
    }
    expect((await entry(t, 'GW-3')).state).toBe('active');
  });

  it('DATA-1: a primary key-encryption key older than a year is misconfigured', async () => {
    const keyFile = join(mkdtempSync(join(tmpdir(), 'gh-trust-kek-')), 'master-keys.json');
    const withFile = await createTestApp({ overrides: { 'keyring.masterKeys': undefined, 'keyring.keyFile': keyFile } });
    try {
      expect((await entry(withFile, 'DATA-1')).state).toBe('active');
      const file = JSON.parse(readFileSync(keyFile, 'utf8')) as { keys: { createdAt: string }[] };
      for (const key of file.keys) key.createdAt = new Date(Date.now() - 400 * 86_400_000).toISOString();
      writeFileSync(keyFile, JSON.stringify(file), { mode: 0o600 });
      const old = await entry(withFile, 'DATA-1');
      expect(old.state).toBe('misconfigured');
      expect(old.text).toContain('400 days old');
    } finally {
      await withFile.close();
    }
  }, 60_000);

  it('GW-1: an AI call with an unknown key let through, or an API key table that could hold plaintext, makes it failed', async () => {
    const ok = await entry(t, 'GW-1');
    expect(ok.state).toBe('active');
    expect(ok.text).toContain('without a key: 401; with an unknown key: 401');
    const restore = fakeResponses(t, (o) => String((o.headers as Record<string, string> | undefined)?.authorization ?? '').startsWith('Bearer gatehouse_'), { statusCode: 200, body: '{}' });
    try {
      expect((await entry(t, 'GW-1')).state).toBe('failed');
    } finally {
      restore();
    }
    await t.node.db.asOwner((tx) => tx.query('alter table api_keys add column trust_plain_key text'));
    try {
      const broken = await entry(t, 'GW-1');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('trust_plain_key');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('alter table api_keys drop column trust_plain_key'));
    }
    expect((await entry(t, 'GW-1')).state).toBe('active');
  });

  it('GW-6: a client-token key missing from the JWKS makes it failed', async () => {
    expect((await entry(t, 'GW-6')).state).toBe('active');
    const keys = t.node.signingKeys;
    const jwks = keys.jwks.bind(keys);
    (keys as { jwks: unknown }).jwks = async (purpose?: string) => (purpose === 'client-token' ? { keys: [] } : jwks(purpose as never));
    try {
      expect((await entry(t, 'GW-6')).state).toBe('failed');
    } finally {
      (keys as { jwks: unknown }).jwks = jwks;
    }
  });
});
