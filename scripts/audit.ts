/**
 * `npm audit` at level high (OPS-5). A finding fails the run. When the registry's advisory
 * endpoint cannot be reached (some networks allow only package downloads), the run says so
 * plainly and passes: that is a missing check, reported as such, never a clean bill of health.
 */
import { spawnSync } from 'node:child_process';

const r = spawnSync('npm', ['audit', '--json', '--audit-level=high'], { encoding: 'utf8' });
let report: { statusCode?: number; message?: string; metadata?: { vulnerabilities?: Record<string, number> } };
try {
  report = JSON.parse(r.stdout) as typeof report;
} catch {
  process.stderr.write(`npm audit: unreadable output (exit ${r.status})\n${r.stderr}\n`);
  process.exit(1);
}
const vulns = report.metadata?.vulnerabilities;
if (vulns) {
  const summary = Object.entries(vulns).map(([level, n]) => `${level} ${n}`).join(', ');
  process.stdout.write(`npm audit: ${summary}\n`);
  process.exit((vulns.high ?? 0) + (vulns.critical ?? 0) > 0 ? 1 : 0);
}
if (typeof report.statusCode === 'number') {
  process.stdout.write(
    `npm audit: NOT CHECKED — the advisory endpoint answered HTTP ${report.statusCode}. ` +
      'Run `npm audit --audit-level=high` where the registry advisory API is reachable.\n',
  );
  process.exit(0);
}
process.stderr.write(`npm audit: unexpected output (exit ${r.status})\n`);
process.exit(1);
