/**
 * The offline verifier's report as text (AUDIT-3): what the file holds, what was proven and what
 * was not, and a last line that starts with the verdict (verify-pins.ts).
 */
import type { VerifyReport } from './verify-types.ts';

/** The last line: the verdict word, then what it covers or the problem. */
function verdictLine(report: VerifyReport): string {
  const problem = report.problem;
  if (report.verdict === 'FAILED' && problem !== undefined) {
    const where = problem.index !== null ? `index ${problem.index}` : problem.line === 0 ? 'a pin' : `line ${problem.line}`;
    return `FAILED: ${problem.reason} at ${where}: ${problem.message}`;
  }
  if (report.verdict === 'VERIFIED') {
    const pins = report.proven.length > 0 ? ' and every pin was met' : '';
    const rest = report.unproven.length > 0 ? ` (see NOT proven above)` : '';
    return `VERIFIED: the signatures check against the pinned keys${pins}${rest}`;
  }
  return 'CONSISTENT-BUT-UNPINNED: consistent in itself, but no keys were pinned: a rewrite re-signed with a new key cannot be excluded (pass --keys)';
}

/**
 * A short human summary ending in the verdict line: `VERIFIED: ...`, `CONSISTENT-BUT-UNPINNED: ...`
 * or `FAILED: <code> at <index n | line n | a pin>: ...`.
 */
export function formatReport(report: VerifyReport): string {
  const lines: string[] = [];
  lines.push(`log:         ${report.log ?? '(unknown)'}`);
  const range = report.firstIndex === null ? '' : ` (index ${report.firstIndex}..${report.lastIndex})`;
  lines.push(`events:      ${report.events}${range}`);
  if (report.pruned !== null) {
    lines.push(`pruned:      events 0..${report.pruned.upTo - 1} removed by retention; chain anchored at ${report.pruned.anchor ?? 'null'}`);
  }
  const covered = report.checkpoints > 0 && report.firstIndex !== null && report.coveredSize > report.firstIndex ? `, covering index ${report.firstIndex}..${report.coveredSize - 1}` : '';
  lines.push(`checkpoints: ${report.checkpoints} verified${covered}`);
  if (report.firstTime !== null) lines.push(`time:        ${report.firstTime} .. ${report.lastTime ?? report.firstTime}`);
  const pinning = report.keysPinned ? 'pinned' : "NOT pinned: compare with the server's /.well-known/jwks.json, or pass --keys";
  lines.push(`keys:        ${report.keys.length > 0 ? report.keys.join(', ') : '(none)'} (${pinning})`);
  for (const proven of report.proven) lines.push(`proven:      ${proven}`);
  for (const unproven of report.unproven) lines.push(`NOT proven:  ${unproven}`);
  if (report.uncovered !== null) {
    lines.push(
      `WARNING: events ${report.uncovered.from}..${report.uncovered.to} are not covered by a signed checkpoint: ` +
        'they could have been changed, added or removed without detection',
    );
  }
  lines.push(verdictLine(report));
  return lines.join('\n');
}
