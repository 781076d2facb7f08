/**
 * The series /metrics promises (OPS-2), each seen after the event it counts: job outcomes,
 * webhook outcomes (received, refused, delivered, failed), reload outcomes and the trust report's
 * controls per state. Guard verdicts, budget use and refusals and breaker transitions are seen
 * after their events in test/guard/gateway.test.ts, test/budgets/api.test.ts and
 * test/gateway/breaker-metrics.test.ts.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { TRUST } from '../../src/trust/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { testJobsModule } from '../jobs/test-module.ts';
import { LOOPBACK_RELAY, makeEndpoint, orgAdmin, startDestination, type Destination } from '../webhooks/fixture.ts';
import { githubHeaders } from '../webhooks/signers.ts';

const CRON = 'cron-secret-metrics-0123456789';
const HOOK_SECRET = 'github-metrics-secret';
const overrides: Record<string, unknown> = { 'rateLimit.enabled': false, 'metrics.open': true, 'cron.secret': CRON, ...LOOPBACK_RELAY };
let t: TestApp;
let dest: Destination;
let org: string;

beforeAll(async () => {
  dest = await startDestination();
  t = await createTestApp({ reloadable: true, extraModules: [testJobsModule()], overrides });
  const admin = await orgAdmin(t.app, t.mail, 'metrics-admin@example.com');
  org = admin.org;
  await makeEndpoint(t.app, admin.user, org, { name: 'gh', provider: 'github', destinationUrl: dest.url, secrets: [HOOK_SECRET] });
}, 120_000);
afterAll(async () => {
  await t?.close();
  await dest?.close();
});

const metrics = async (): Promise<string> => (await t.app.inject({ url: '/metrics' })).body;

async function hook(secret: string): Promise<number> {
  const body = `{"tag":"${randomUUID()}"}`;
  const res = await t.app.inject({ method: 'POST', url: `/v1/hooks/${org}/gh`, payload: body, headers: { 'content-type': 'application/json', ...(await githubHeaders(body, secret, randomUUID())) } });
  return res.statusCode;
}

describe('promised series appear in /metrics after their event', () => {
  it('job outcomes: a run that succeeded and one that failed', async () => {
    expect(await metrics()).not.toMatch(/gatehouse_job_runs_total\{job="test\.(count|fail)"/);
    const cron = (job: string) => t.app.inject({ method: 'POST', url: `/v1/cron/${job}`, headers: { authorization: `Bearer ${CRON}` } });
    expect((await cron('test.count')).statusCode).toBe(200);
    await cron('test.fail');
    const text = await metrics();
    expect(text).toContain('gatehouse_job_runs_total{job="test.count",outcome="succeeded"} 1');
    expect(text).toContain('gatehouse_job_runs_total{job="test.fail",outcome="failed"} 1');
  });

  it('webhook outcomes: received, refused, delivered and a failed delivery', async () => {
    const before = await metrics();
    expect(before).not.toMatch(/gatehouse_webhooks_received_total\{provider="github"\}/);
    expect(before).toMatch(/gatehouse_webhooks_delivered_total 0\n/);
    expect(await hook(HOOK_SECRET)).toBe(200);
    expect(await hook('wrong-secret')).toBe(401);
    await t.node.use(WEBHOOKS).relay.drain();
    dest.setUp(false);
    expect(await hook(HOOK_SECRET)).toBe(200);
    await t.node.use(WEBHOOKS).relay.drain();
    dest.setUp(true);
    const text = await metrics();
    expect(text).toContain('gatehouse_webhooks_received_total{provider="github"} 2');
    expect(text).toMatch(/gatehouse_webhooks_refused_total\{provider="github",reason="WEBHOOK_[A-Z_]+"\} 1/);
    expect(text).toContain('gatehouse_webhooks_delivered_total 1');
    expect(text).toContain('gatehouse_webhooks_delivery_failed_total{reason="http_503"} 1');
  });

  it('reload outcomes and the trust report controls per state', async () => {
    const before = await metrics();
    expect(before).toContain('gatehouse_config_reloads_total{outcome="applied"} 0');
    overrides['log.level'] = 'warn';
    expect((await t.node.use(TRUST).reload('api')).status).toBe('applied');
    overrides['metrics.token'] = 'short';
    expect((await t.node.use(TRUST).reload('api')).status).toBe('refused');
    const { report } = await t.node.use(TRUST).generate();
    const text = await metrics();
    expect(text).toContain('gatehouse_config_reloads_total{outcome="applied"} 1');
    expect(text).toContain('gatehouse_config_reloads_total{outcome="refused"} 1');
    expect(text).toContain('gatehouse_config_last_reload_success 0');
    expect(text).toContain(`gatehouse_trust_report_controls{state="active"} ${report.summary.active}`);
    expect(text).toContain(`gatehouse_trust_report_controls{state="failed"} ${report.summary.failed}`);
  });
});
