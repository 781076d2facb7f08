/**
 * The trust feature (OPS-3, OPS-4): the trust report generated from live checks, and the node's
 * configuration reloads (SIGHUP, `gatehouse reload`, watched `<VAR>_FILE` files).
 *
 * Adding a check from another feature (budgets, guard, webhooks, backups...): declare it in the
 * feature's module and add it to this hook point; the report runs it at every generation, beside
 * the built-in ones, and several checks of one control combine into its entry (the worst state
 * wins). A control ID not in the built-in list (src/trust/controls.ts) gets its own entry titled
 * by the check's `title`; also add the ID there once docs/controls.md lists it.
 *
 *   import { TRUST, TRUST_CHECKS, type TrustCheck } from '../trust/index.ts';
 *   const budgetsCheck: TrustCheck = {
 *     control: 'BUDGET-1', name: 'budgets-configured', title: 'Budgets',
 *     run: async (ctx) => ({ state: 'active', evidence: ['3 workspaces with a budget'] }),
 *   };
 *   // in the module: dependsOn: [..., TRUST], hooks: [hook(TRUST_CHECKS, budgetsCheck)]
 *
 * A check states only what it observed now: `off` when configuration turns the control off,
 * `failed` when it found it broken, `not verified` (with `why`) when it could not look. It never
 * returns `active` without having checked; a throw is reported `not verified`.
 */
import type { FastifyInstance } from 'fastify';
import { AUDIT } from '../audit/index.ts';
import { configFingerprint } from '../config/live.ts';
import { publicOriginOf } from '../config/schema.ts';
import { GATEWAY } from '../gateway/index.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { defineModule, hookPoint, moduleRef } from '../server/module.ts';
import { auditMoreChecks } from './checks-audit.ts';
import { AUTH_CHECKS } from './checks-auth.ts';
import { auditChecks, DATA_CHECKS } from './checks-data.ts';
import { KEY_CHECKS } from './checks-keys.ts';
import { EDGE_CHECKS } from './checks-edge.ts';
import { configCheck, gatewayChecks, OPS_CHECKS } from './checks-ops.ts';
import { buildReport, redactReport, signReport } from './report.ts';
import { createReloader, type ReloadTrigger } from './reload.ts';
import { createTrustFeature } from './routes.ts';
import type { SignedTrustReport, TrustCheck, TrustReportBody } from './types.ts';
import type { ReloadOutcome } from '../config/live.ts';
import { Gauge } from 'prom-client';
import { CONTROL_STATES } from './types.ts';
import { TRUST_AUDIT_ACTIONS } from './audit-actions.ts';

export type { ControlState, SignedTrustReport, TrustCheck, TrustCheckContext, TrustCheckResult, TrustReportBody } from './types.ts';
export { verifyTrustReport } from './report.ts';
export { renderTrustHtml, TRUST_HTML_CSP, TRUST_HTML_META_CSP } from './html.ts';
export { reloadStatusPath } from './reload.ts';
export { IMPLEMENTED_CONTROLS, ORGANISATIONAL_PROMISES } from './controls.ts';
/** For checks that read tenant tables: forced RLS binds the owner too, so they read per tenant. */
export { forTenants, MAX_TENANTS_READ } from './checks-audit.ts';
export { probeAddress } from './checks-edge.ts';

/** Live checks other features add to the trust report (see the comment at the top of this file). */
export const TRUST_CHECKS = hookPoint<TrustCheck>('trust.checks');

export interface Trust {
  /** Runs every check now and returns the signed report (an audit event). */
  generate(options?: { redacted?: boolean }): Promise<SignedTrustReport>;
  /** The public, redacted report: the last one while younger than trust.publicCacheSeconds. */
  publicReport(): Promise<SignedTrustReport>;
  /** Reloads the configuration (one at a time); an audit event. */
  reload(trigger: ReloadTrigger): Promise<ReloadOutcome>;
  /** Every check the report runs: the built-in ones and those other features added. */
  checks(): TrustCheck[];
}

export const TRUST = moduleRef<Trust>('trust');

/** The trust module: the report, its routes and metrics, and the node's reloads (watching the configuration's files). */
export const trustModule = defineModule({
  ref: TRUST,
  dependsOn: [AUDIT, GATEWAY],
  auditActions: TRUST_AUDIT_ACTIONS,
  create: (ctx) => {
    const audit = ctx.use(AUDIT);
    const gateway = ctx.use(GATEWAY);
    let app: FastifyInstance | undefined;
    const builtIn: TrustCheck[] = [...EDGE_CHECKS, ...DATA_CHECKS, ...AUTH_CHECKS, ...KEY_CHECKS, ...OPS_CHECKS, configCheck(ctx.live), ...gatewayChecks(gateway), ...auditChecks(audit), ...auditMoreChecks(audit)];
    const checks = (): TrustCheck[] => [...builtIn, ...ctx.hooks.list(TRUST_CHECKS)];
    const controlsGauge = new Gauge({ name: 'gatehouse_trust_report_controls', help: 'Controls per state in the last trust report generated on this node.', labelNames: ['state'], registers: [] });
    const reloader = createReloader({ live: ctx.live, audit, logger: ctx.logger, now: ctx.now, dataDir: ctx.config.storage.dataDir });

    let inFlight: Promise<TrustReportBody> | undefined;
    const generateFull = async (): Promise<TrustReportBody> => {
      const config = ctx.live.current();
      const body = await buildReport(checks(), { config, db: ctx.db, kv: ctx.kv, keyring: ctx.keyring, signingKeys: ctx.signingKeys, logger: ctx.logger, now: ctx.now, app }, { origin: publicOriginOf(config), configSha256: configFingerprint(config) });
      for (const state of CONTROL_STATES) controlsGauge.set({ state }, body.summary[state]);
      return body;
    };
    const generate = async (options: { redacted?: boolean } = {}): Promise<SignedTrustReport> => {
      // Concurrent requests share one run of the checks.
      const run = (inFlight ??= generateFull().finally(() => (inFlight = undefined)));
      const report = await run;
      const signed = await signReport(options.redacted ? redactReport(report) : report, ctx.signingKeys);
      await audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'trust.report.generated', data: { redacted: options.redacted === true, summary: CONTROL_STATES.map((st) => `${st} ${report.summary[st]}`).join(', '), configSha256: report.configSha256, kid: signed.signature.kid } });
      return signed;
    };
    let cached: { at: number; report: Promise<SignedTrustReport> } | undefined;
    const publicReport = (): Promise<SignedTrustReport> => {
      const ttl = ctx.live.current().trust.publicCacheSeconds * 1000;
      if (!cached || ctx.now() - cached.at >= ttl) {
        const report = generate({ redacted: true });
        cached = { at: ctx.now(), report };
        report.catch(() => (cached = undefined));
      }
      return cached.report;
    };
    const api: Trust = { generate, publicReport, reload: (trigger) => reloader.reload(trigger), checks };
    return {
      api,
      feature: createTrustFeature({ generate: () => generate(), publicReport, publicEnabled: () => ctx.live.current().trust.publicReport }),
      metrics: [...reloader.metrics, controlsGauge],
      onServer: (server) => {
        app = server;
        reloader.watch();
      },
      close: async () => reloader.close(),
    };
  },
});
