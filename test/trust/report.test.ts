/**
 * The trust report (OPS-4): every implemented control has an entry, the report is signed with the
 * audit checkpoint key and verifies against the JWKS (a tampered copy does not), generating it is
 * an audit event, operators only, and the public copy is off by default.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../support/app.ts';
import { TEST_PASSWORD, signUpUser } from '../support/users.ts';
import { IMPLEMENTED_CONTROLS, TRUST, TRUST_HTML_CSP, TRUST_HTML_META_CSP, verifyTrustReport, type SignedTrustReport } from '../../src/trust/index.ts';

let t: TestApp;
let op: { authorization: string };

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
  const token = await t.node.identity.accounts.ensureSetupToken();
  await t.app.inject({ method: 'POST', url: '/v1/setup', payload: { token, email: 'trust-operator@example.com', password: TEST_PASSWORD } });
  const login = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: 'trust-operator@example.com', password: TEST_PASSWORD } });
  op = { authorization: `Bearer ${login.json().accessToken as string}` };
}, 60_000);
afterAll(async () => t?.close());

const jwks = async () => (await t.app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: never[] }>();

describe('the trust report', () => {
  it('has one entry per control ID that docs/controls.md lists, and the organisational promises apart', async () => {
    const documented = [...readFileSync(new URL('../../docs/controls.md', import.meta.url), 'utf8').matchAll(/^\| ([A-Z]+-\d+) /gm)].map((m) => m[1]);
    expect(IMPLEMENTED_CONTROLS.map((c) => c.id).sort()).toEqual([...documented].sort());
    const { report } = await t.node.use(TRUST).generate();
    expect(report.controls.map((c) => c.control).sort()).toEqual([...documented].sort());
    for (const c of report.controls) {
      if (c.state !== 'active' && c.state !== 'off') expect(c.checks.some((k) => (k.why ?? '').length > 0)).toBe(true);
    }
    expect(report.organisational.map((o) => o.state)).toEqual(Array(5).fill('organisational — not verifiable by this software'));
  });

  it('operators get it signed with the audit checkpoint key; it verifies with the published JWKS and a tampered copy does not', async () => {
    const res = await t.app.inject({ url: '/v1/admin/trust-report', headers: op });
    expect(res.statusCode).toBe(200);
    const signed = res.json<SignedTrustReport>();
    const keys = await jwks();
    const auditKid = (await t.node.signingKeys.current('audit-checkpoint')).kid;
    expect(signed.signature.kid).toBe(auditKid);
    expect(verifyTrustReport(signed, keys)).toBe(true);
    const tampered = structuredClone(signed);
    const failed = tampered.report.controls.find((c) => c.state !== 'active');
    if (failed) failed.state = 'active';
    else tampered.report.generatedAt = new Date(0).toISOString();
    expect(verifyTrustReport(tampered, keys)).toBe(false);
    const flipped = structuredClone(signed);
    flipped.report.summary.active += 1;
    expect(verifyTrustReport(flipped, keys)).toBe(false);
    // The organisational section is signed too: a copy that claims a promise was verified does not verify.
    expect(signed.report.organisational.map((o) => o.promise)).toEqual(['SOC 2 attestation', 'Background checks of staff', 'Penetration tests', 'Bug bounty programme', 'WAF and DDoS protection in front of the service']);
    const claimed = structuredClone(signed);
    (claimed.report.organisational[0] as { state: string }).state = 'active';
    expect(verifyTrustReport(claimed, keys)).toBe(false);
  });

  it('generating it is an audit event on the platform log', async () => {
    await t.app.inject({ url: '/v1/admin/trust-report', headers: op });
    const res = await t.app.inject({ url: '/v1/admin/audit?action=trust.report.generated', headers: op });
    expect(res.json().events.length).toBeGreaterThanOrEqual(1);
    expect(res.json().events[0].data.kid).toBe((await t.node.signingKeys.current('audit-checkpoint')).kid);
  });

  it('is for operators only: a signed-in user who is not one gets 403, no session 401', async () => {
    const user = await signUpUser(t.app, t.mail, 'trust-user@example.com');
    expect((await t.app.inject({ url: '/v1/admin/trust-report', headers: user.auth })).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/v1/admin/trust-report' })).statusCode).toBe(401);
  });

  it('the HTML page is self-contained under a strict CSP: no script, no external asset, the signed JSON embedded', async () => {
    const res = await t.app.inject({ url: '/v1/admin/trust-report.html', headers: op });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toBe(TRUST_HTML_CSP);
    expect(TRUST_HTML_CSP).toMatch(/^default-src 'none'; style-src 'sha256-/);
    expect(TRUST_HTML_CSP).toBe(`${TRUST_HTML_META_CSP}; frame-ancestors 'none'`);
    expect(res.body).toContain(`content="${TRUST_HTML_META_CSP.replace(/'/g, '&#39;')}"`);
    expect(res.body).not.toMatch(/<script(?! type="application\/json")/);
    expect(res.body).not.toMatch(/(src|href)=["']?https?:/);
    const embedded = JSON.parse(/<script type="application\/json" id="signed-report">(.*)<\/script>/s.exec(res.body)?.[1] ?? '{}') as SignedTrustReport;
    expect(verifyTrustReport(embedded, await jwks())).toBe(true);
    expect(res.body).toContain('organisational — not verifiable by this software');
  });

  it('the public copy is off by default (404), and when on it carries states without evidence, signed', async () => {
    expect((await t.app.inject({ url: '/.well-known/trust-report' })).statusCode).toBe(404);
    expect((await t.app.inject({ url: '/.well-known/trust-report.html' })).statusCode).toBe(404);
    const on = await createTestApp({ overrides: { 'trust.publicReport': true } });
    try {
      const res = await on.app.inject({ url: '/.well-known/trust-report' });
      expect(res.statusCode).toBe(200);
      const signed = res.json<SignedTrustReport>();
      expect(signed.report.redacted).toBe(true);
      expect(signed.report.controls.every((c) => c.checks.every((k) => k.evidence.length === 0))).toBe(true);
      expect(signed.report.organisational).toHaveLength(5);
      const keys = (await on.app.inject({ url: '/.well-known/jwks.json' })).json<{ keys: never[] }>();
      expect(verifyTrustReport(signed, keys)).toBe(true);
      // Served from the cache within trust.publicCacheSeconds: the same signed copy.
      expect((await on.app.inject({ url: '/.well-known/trust-report' })).json()).toEqual(signed);
    } finally {
      await on.close();
    }
  });
});
