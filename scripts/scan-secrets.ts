/**
 * Secret scan over every tracked file (OPS-5): fails when a committed file holds something that
 * looks like a live credential. Test fixtures that need key-shaped strings build them at run
 * time, or mark a deliberately fake one with `secret-scan: fake` on its line.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { API_KEY_PATTERN, parseApiKey } from '../src/gateway/api-key-format.ts';

const PATTERNS: [string, RegExp][] = [
  ['private key block', /-----BEGIN (?:RSA |EC |OPENSSH |DSA |ENCRYPTED )?PRIVATE KEY-----/],
  ['AWS access key id', /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/],
  ['GitHub token', /\bgh[pousr]_[A-Za-z0-9]{36,}\b/],
  ['Slack token', /\bxox[abprs]-[A-Za-z0-9-]{10,}\b/],
  ['OpenAI key', /\bsk-(?:proj-)?[A-Za-z0-9_-]{32,}\b/],
  ['Anthropic key', /\bsk-ant-[A-Za-z0-9_-]{32,}\b/],
  ['Stripe live key', /\b[rs]k_live_[A-Za-z0-9]{20,}\b/],
  ['Google API key', /\bAIza[0-9A-Za-z_-]{35}\b/],
  ['credentials in a URL', /\b[a-z][a-z0-9+.-]*:\/\/[^\s:/@'"`]+:(?!\*\*\*|\[REDACTED\]|\$\{|<)[^\s/@'"`]{6,}@[a-z0-9.-]+/i],
];

// Gatehouse API keys are recognised by their shape and confirmed by their checksum (offline, as any
// scanner can): a 64-character string that merely looks like one is not reported.
const GATEHOUSE_KEY = new RegExp(API_KEY_PATTERN.source, 'g');

/** The Gatehouse API keys in `line` whose checksum holds. */
function gatehouseKeysIn(line: string): string[] {
  return [...line.matchAll(GATEHOUSE_KEY)].map((m) => m[0]).filter((candidate) => parseApiKey(candidate) !== null);
}

const files = execFileSync('git', ['ls-files', '-z'], { encoding: 'utf8' }).split('\0').filter(Boolean);
const findings: string[] = [];
for (const file of files) {
  if (file === 'package-lock.json' || file === 'scripts/scan-secrets.ts') continue;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    continue;
  }
  if (text.includes('\0')) continue;
  text.split('\n').forEach((line, i) => {
    // A deliberately fake credential in a test is marked on its line.
    if (line.includes('secret-scan: fake')) return;
    for (const [name, re] of PATTERNS) {
      if (re.test(line)) findings.push(`${file}:${i + 1}: ${name}`);
    }
    if (line.includes('gatehouse_') && gatehouseKeysIn(line).length > 0) findings.push(`${file}:${i + 1}: Gatehouse API key`);
  });
}
if (findings.length > 0) {
  process.stderr.write(`secret scan: ${findings.length} finding(s)\n${findings.join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`secret scan: ${files.length} tracked files, no findings\n`);
