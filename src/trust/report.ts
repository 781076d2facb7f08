/**
 * Builds the trust report (OPS-4): every check runs now (in parallel, each bounded in time), the
 * checks of a control combine into one entry whose state is the worst of theirs, every
 * implemented control gets an entry (one without a live check says "not verified" and why), and
 * the report is signed with the audit-checkpoint key over its RFC 8785 canonical bytes, so a
 * published copy can be checked against /.well-known/jwks.json (`verifyTrustReport`).
 */
import { canonicalBytes } from '../audit/index.ts';
import { verifyEd25519 } from '../crypto/signing.ts';
import type { PublicJwk, SigningKeys } from '../keyring/signing-keys.ts';
import { IMPLEMENTED_CONTROLS, ORGANISATIONAL_PROMISES } from './controls.ts';
import { CONTROL_STATES, type ControlState, type SignedTrustReport, type TrustCheck, type TrustCheckContext, type TrustCheckEntry, type TrustEntry, type TrustReportBody } from './types.ts';

/** Longest a single check may take before it is reported "not verified" (timed out). */
export const CHECK_TIMEOUT_MS = 10_000;

const severity = (s: ControlState): number => CONTROL_STATES.indexOf(s);

async function runCheck(check: TrustCheck, ctx: TrustCheckContext): Promise<TrustCheckEntry> {
  const started = ctx.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    const result = await Promise.race([
      check.run(ctx),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), CHECK_TIMEOUT_MS);
      }),
    ]);
    return { name: check.name, ...result, ms: ctx.now() - started };
  } catch (err) {
    ctx.logger.warn({ err, check: check.name, control: check.control }, 'a trust check could not run');
    // A check that could not run proves nothing: never active.
    const what = err instanceof Error && err.message === 'timed out' ? `it timed out after ${CHECK_TIMEOUT_MS} ms` : `it failed to run (${err instanceof Error ? err.name : 'error'}${(err as { code?: unknown }).code ? ` ${String((err as { code?: unknown }).code)}` : ''})`;
    return { name: check.name, state: 'not verified', evidence: [], why: `the check could not be made: ${what}`, ms: ctx.now() - started };
  } finally {
    clearTimeout(timer);
  }
}

/** Runs every check and assembles the (unsigned) report. */
export async function buildReport(checks: readonly TrustCheck[], ctx: TrustCheckContext, meta: { origin: string; configSha256: string }): Promise<TrustReportBody> {
  const results = await Promise.all(checks.map(async (check) => ({ control: check.control, title: check.title, entry: await runCheck(check, ctx) })));
  const titles = new Map(IMPLEMENTED_CONTROLS.map((c) => [c.id, c.title]));
  for (const r of results) if (!titles.has(r.control)) titles.set(r.control, r.title ?? r.control);
  const controls: TrustEntry[] = [...titles].map(([control, title]) => {
    const mine = results.filter((r) => r.control === control).map((r) => r.entry);
    if (mine.length === 0) {
      const none: TrustCheckEntry = { name: 'none', state: 'not verified', evidence: [], why: 'no live check exists for this control yet; the tests cited in docs/controls.md prove it in the test suite, not in this deployment', ms: 0 };
      return { control, title, state: 'not verified', checks: [none] };
    }
    const state = mine.reduce<ControlState>((worst, c) => (severity(c.state) > severity(worst) ? c.state : worst), 'active');
    return { control, title, state, checks: mine };
  });
  const summary = Object.fromEntries(CONTROL_STATES.map((s) => [s, controls.filter((c) => c.state === s).length])) as Record<ControlState, number>;
  return {
    format: 'gatehouse-trust-report/1',
    generatedAt: new Date(ctx.now()).toISOString(),
    origin: meta.origin,
    configSha256: meta.configSha256,
    summary,
    controls,
    organisational: ORGANISATIONAL_PROMISES.map((promise) => ({ promise, state: 'organisational — not verifiable by this software' as const })),
    redacted: false,
  };
}

/** The public variant: states and reasons only, no evidence (which names hosts, ports, counts). */
export function redactReport(report: TrustReportBody): TrustReportBody {
  return {
    ...report,
    configSha256: '',
    redacted: true,
    controls: report.controls.map((c) => ({ ...c, checks: c.checks.map((k) => ({ name: k.name, state: k.state, evidence: [], ms: 0 })) })),
  };
}

/** Signs the report with the current audit-checkpoint key. */
export async function signReport(report: TrustReportBody, signingKeys: SigningKeys): Promise<SignedTrustReport> {
  const signer = await signingKeys.current('audit-checkpoint');
  return { report, signature: { alg: 'EdDSA', kid: signer.kid, value: signer.sign(canonicalBytes(report)).toString('base64url') } };
}

/**
 * Whether `signed` was signed by one of `jwks`' keys (the server's /.well-known/jwks.json) and is
 * unchanged since. False for any change to any field, an unknown kid or a malformed signature.
 */
export function verifyTrustReport(signed: SignedTrustReport, jwks: { keys: readonly PublicJwk[] }): boolean {
  const key = jwks.keys.find((k) => k.kid === signed?.signature?.kid);
  if (!key || signed.signature.alg !== 'EdDSA' || typeof signed.signature.value !== 'string') return false;
  try {
    return verifyEd25519(key, canonicalBytes(signed.report), Buffer.from(signed.signature.value, 'base64url'));
  } catch {
    return false;
  }
}
