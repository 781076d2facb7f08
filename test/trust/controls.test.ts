/**
 * A test per control of the trust report (OPS-4): each turns the control off or breaks it and sees
 * the entry change state. The report must never say active for a control that is broken.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { freePort, startSmtpSink } from '../support/smtp-sink.ts';
import { TRUST, type ControlState } from '../../src/trust/index.ts';
import { buildReport } from '../../src/trust/report.ts';

async function entry(t: TestApp, control: string): Promise<{ state: ControlState; text: string }> {
  const { report } = await t.node.use(TRUST).generate();
  const found = report.controls.find((c) => c.control === control);
  if (!found) throw new Error(`no entry for ${control}`);
  return { state: found.state, text: JSON.stringify(found.checks) };
}

/** Replaces the server's own responses for the checks' self-requests (a broken header hook, a broken CORS plugin). */
function tamperResponses(t: TestApp, edit: (res: { headers: Record<string, unknown> }, url: string) => void): () => void {
  const original = t.app.inject.bind(t.app);
  t.app.inject = (async (opts: InjectOptions) => {
    const res = await original(opts);
    edit(res as never, String(opts.url));
    return res;
  }) as never;
  return () => {
    t.app.inject = original as never;
  };
}

function makeCert(): { certFile: string; keyFile: string } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-trust-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  // prettier-ignore
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile], { stdio: 'ignore' });
  return { certFile, keyFile };
}

let t: TestApp;
const overrides: Record<string, unknown> = {};
beforeAll(async () => {
  t = await createTestApp({ overrides, reloadable: true });
}, 60_000);
afterAll(async () => t?.close());

describe('trust report: a broken or disabled control is never active', () => {
  it('EDGE-1: TLS off is off; TLS on and listening is active after a real TLS 1.3 handshake; not listening is not verified', async () => {
    expect((await entry(t, 'EDGE-1')).state).toBe('off');
    const tls = await createTestApp({ overrides: { 'tls.certFile': makeCert().certFile, 'tls.keyFile': '' } }).catch(() => undefined);
    expect(tls).toBeUndefined(); // certFile without keyFile is refused at load
    const cert = makeCert();
    const secure = await createTestApp({ overrides: { 'tls.certFile': cert.certFile, 'tls.keyFile': cert.keyFile } });
    try {
      const unlistened = await entry(secure, 'EDGE-1');
      expect(unlistened.state).toBe('not verified');
      await secure.app.listen({ host: '127.0.0.1', port: 0 });
      const on = await entry(secure, 'EDGE-1');
      expect(on.state).toBe('active');
      expect(on.text).toContain('TLSv1.3');
      expect(on.text).toContain('a TLS 1.2-only client was refused');
      const restore = tamperResponses(secure, (res) => delete res.headers['strict-transport-security']);
      try {
        expect((await entry(secure, 'EDGE-1')).state).toBe('failed');
      } finally {
        restore();
      }
    } finally {
      await secure.close();
    }
  }, 60_000);

  it('EDGE-2: a response without one of the security headers makes it failed', async () => {
    expect((await entry(t, 'EDGE-2')).state).toBe('active');
    const restore = tamperResponses(t, (res, url) => url.includes('404') && delete res.headers['x-frame-options']);
    try {
      const broken = await entry(t, 'EDGE-2');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('x-frame-options');
    } finally {
      restore();
    }
  });

  it('EDGE-3: CORS granted to an unlisted origin makes it failed', async () => {
    const restore = tamperResponses(t, (res) => (res.headers['access-control-allow-origin'] = 'https://trust-check.invalid'));
    try {
      expect((await entry(t, 'EDGE-3')).state).toBe('failed');
    } finally {
      restore();
    }
    expect((await entry(t, 'EDGE-3')).state).toBe('active');
  });

  it('EDGE-5 and TEN-1: a route without a guard, or permission routes without the authorizer, make them failed', async () => {
    expect((await entry(t, 'EDGE-5')).state).toBe('active');
    const routes = t.app.gatehouse.routes;
    routes.push({ method: 'GET', url: '/v1/unguarded', permission: null, rateCategory: 'read', summary: 'x', hasBody: false, feature: 'x' } as never);
    try {
      const broken = await entry(t, 'EDGE-5');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('GET /v1/unguarded has no guard');
    } finally {
      routes.pop();
    }
    const verifiers = t.app.gatehouse.verifiers;
    const authorize = verifiers.authorize;
    delete verifiers.authorize;
    try {
      expect((await entry(t, 'TEN-1')).state).toBe('failed');
    } finally {
      verifiers.authorize = authorize;
    }
    expect((await entry(t, 'TEN-1')).state).toBe('active');
  });

  it('EDGE-8: the placeholder security contact is misconfigured; a real one is active', async () => {
    expect((await entry(t, 'EDGE-8')).state).toBe('misconfigured');
    const fixed = await createTestApp({ overrides: { 'securityTxt.contact': ['mailto:security@gatehouse.test'] } });
    try {
      expect((await entry(fixed, 'EDGE-8')).state).toBe('active');
    } finally {
      await fixed.close();
    }
  });

  it('OPS-2: storage that does not answer makes it failed (readiness 503)', async () => {
    const db = t.node.db;
    const ping = db.ping.bind(db);
    (db as { ping: () => Promise<void> }).ping = () => Promise.reject(new Error('down'));
    try {
      expect((await entry(t, 'OPS-2')).state).toBe('failed');
    } finally {
      (db as { ping: () => Promise<void> }).ping = ping;
    }
  });

  it('ABUSE-1: turned off is off, open on store failure is misconfigured, a store that does not answer is failed', async () => {
    expect((await entry(t, 'ABUSE-1')).state).toBe('active');
    const kv = t.node.kv;
    const hit = kv.hitSlidingWindow.bind(kv);
    (kv as { hitSlidingWindow: unknown }).hitSlidingWindow = () => Promise.reject(new Error('down'));
    try {
      expect((await entry(t, 'ABUSE-1')).state).toBe('failed');
    } finally {
      (kv as { hitSlidingWindow: unknown }).hitSlidingWindow = hit;
    }
    const other = await createTestApp({ overrides: { 'rateLimit.onStoreError': 'open' } });
    try {
      expect((await entry(other, 'ABUSE-1')).state).toBe('misconfigured');
    } finally {
      await other.close();
    }
    overrides['rateLimit.enabled'] = false;
    try {
      expect((await t.node.use(TRUST).reload('api')).status).toBe('applied');
      expect((await entry(t, 'ABUSE-1')).state).toBe('off');
    } finally {
      delete overrides['rateLimit.enabled'];
      await t.node.use(TRUST).reload('api');
    }
    expect((await entry(t, 'ABUSE-1')).state).toBe('active');
  }, 60_000);

  it('TEN-2: an application role given BYPASSRLS makes it failed', async () => {
    expect((await entry(t, 'TEN-2')).state).toBe('active');
    await t.node.db.asOwner((tx) => tx.query('alter role gatehouse_app bypassrls'));
    try {
      expect((await entry(t, 'TEN-2')).state).toBe('failed');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('alter role gatehouse_app nobypassrls'));
    }
    expect((await entry(t, 'TEN-2')).state).toBe('active');
  });

  it('TEN-3: a tenant table without forced row-level security makes it failed, naming the table', async () => {
    await t.node.db.asOwner((tx) => tx.query('create table trust_leak (tenant_id uuid not null)'));
    try {
      const broken = await entry(t, 'TEN-3');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('trust_leak');
    } finally {
      await t.node.db.asOwner((tx) => tx.query('drop table trust_leak'));
    }
    expect((await entry(t, 'TEN-3')).state).toBe('active');
  });

  it('DATA-1: a key file readable by others is failed; an old signing key is misconfigured; keys from the environment are not verified', async () => {
    expect((await entry(t, 'DATA-1')).state).toBe('not verified');
    const dir = mkdtempSync(join(tmpdir(), 'gh-trust-keys-'));
    const keyFile = join(dir, 'master-keys.json');
    const withFile = await createTestApp({ overrides: { 'keyring.masterKeys': undefined, 'keyring.keyFile': keyFile } });
    try {
      expect((await entry(withFile, 'DATA-1')).state).toBe('active');
      chmodSync(keyFile, 0o644);
      const open = await entry(withFile, 'DATA-1');
      expect(open.state).toBe('failed');
      expect(open.text).toContain('key file mode 0644');
      chmodSync(keyFile, 0o600);
      await withFile.node.db.asOwner((tx) => tx.query("update signing_keys set activated_at = now() - interval '400 days' where state = 'current' and purpose = 'access-token'"));
      expect((await entry(withFile, 'DATA-1')).state).toBe('misconfigured');
    } finally {
      await withFile.close();
    }
  }, 60_000);

  it('DATA-2: key-encryption keys that do not open the data keys make it not active', async () => {
    const keyring = t.node.keyring;
    const verify = keyring.verifyKeks.bind(keyring);
    (keyring as { verifyKeks: unknown }).verifyKeks = () => Promise.reject(Object.assign(new Error('no'), { name: 'CryptoError', code: 'DECRYPT_FAILED' }));
    try {
      const broken = await entry(t, 'DATA-2');
      expect(broken.state).toBe('not verified');
      expect(broken.text).toContain('DECRYPT_FAILED');
    } finally {
      (keyring as { verifyKeks: unknown }).verifyKeks = verify;
    }
  });

  it('AUDIT-2: an audit event rewritten in the database makes it failed', async () => {
    const other = await createTestApp({});
    try {
      expect((await entry(other, 'AUDIT-2')).state).toBe('active');
      await other.node.db.asOwner(async (tx) => {
        await tx.query('alter table audit_events disable trigger user');
        await tx.query("update audit_events set body = replace(body, 'node.started', 'node.stopped') where seq = 0");
        await tx.query('alter table audit_events enable trigger user');
      });
      const broken = await entry(other, 'AUDIT-2');
      expect(broken.state).toBe('failed');
      expect(broken.text).toContain('FAILED');
    } finally {
      await other.close();
    }
  }, 60_000);

  it('AUTH-2: no SMTP is off; an SMTP server that greets is active; one that does not answer is failed', async () => {
    expect((await entry(t, 'AUTH-2')).state).toBe('off');
    const sink = await startSmtpSink();
    overrides['mail.smtpUrl'] = `smtp://127.0.0.1:${sink.port}`;
    try {
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'AUTH-2')).state).toBe('active');
      overrides['mail.smtpUrl'] = `smtp://127.0.0.1:${await freePort()}`;
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'AUTH-2')).state).toBe('failed');
    } finally {
      await sink.close();
      delete overrides['mail.smtpUrl'];
      await t.node.use(TRUST).reload('api');
    }
  });

  it('OPS-5: unknown audit date is not verified; a recent clean audit is active; high findings are failed', async () => {
    expect((await entry(t, 'OPS-5')).state).toBe('not verified');
    const file = join(mkdtempSync(join(tmpdir(), 'gh-trust-audit-')), 'audit.json');
    writeFileSync(file, JSON.stringify({ metadata: { vulnerabilities: { info: 0, low: 1, moderate: 0, high: 0, critical: 0 } } }));
    overrides['trust.dependencyAuditFile'] = file;
    try {
      await t.node.use(TRUST).reload('api');
      expect((await entry(t, 'OPS-5')).state).toBe('active');
      writeFileSync(file, JSON.stringify({ metadata: { vulnerabilities: { info: 0, low: 0, moderate: 0, high: 2, critical: 0 } } }));
      expect((await entry(t, 'OPS-5')).state).toBe('failed');
    } finally {
      delete overrides['trust.dependencyAuditFile'];
      await t.node.use(TRUST).reload('api');
    }
  });

  it('a check that throws or hangs is reported not verified, never active', async () => {
    const ctx = { now: Date.now, logger: t.node.logger } as never;
    const report = await buildReport([{ control: 'EDGE-2', name: 'throws', run: () => Promise.reject(new Error('boom')) }], ctx, { origin: 'x', configSha256: 'y' });
    expect(report.controls.find((c) => c.control === 'EDGE-2')?.state).toBe('not verified');
    expect(report.controls.every((c) => c.state === 'not verified')).toBe(true);
  });
});
