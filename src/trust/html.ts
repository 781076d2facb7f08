/**
 * The trust report as one self-contained HTML page: no script, no external asset, one inline
 * style allowed by its hash in a Content-Security-Policy meta tag (the route serves the same
 * policy as a header). The signed JSON is embedded as an inert `application/json` block, so a
 * saved page can still be verified.
 */
import { createHash } from 'node:crypto';
import type { SignedTrustReport } from './types.ts';

const STYLE = [
  'body{font:15px/1.45 system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}',
  'table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}',
  '.s{font-weight:600;white-space:nowrap}.active{color:#106b21}.off{color:#555}.failed{color:#a1000f}.misconfigured{color:#9a5b00}.not-verified{color:#3b4a9b}',
  'ul{margin:.2rem 0;padding-left:1.1rem}small{color:#555}code{font-size:.85em}',
].join('');

/** The policy the page carries in its meta tag (a saved copy keeps it): nothing but its own inline style. */
export const TRUST_HTML_META_CSP = `default-src 'none'; style-src 'sha256-${createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; form-action 'none'`;
/** The header policy of the served page: the meta policy plus frame-ancestors, which browsers ignore in a meta tag. */
export const TRUST_HTML_CSP = `${TRUST_HTML_META_CSP}; frame-ancestors 'none'`;

const esc = (text: string): string => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export function renderTrustHtml(signed: SignedTrustReport): string {
  const { report } = signed;
  const rows = report.controls
    .map((c) => {
      const details = c.checks
        .map((k) => `<li><code>${esc(k.name)}</code>: ${esc(k.state)}${k.why ? ` — ${esc(k.why)}` : ''}${k.evidence.length > 0 ? `<ul>${k.evidence.map((e) => `<li>${esc(e)}</li>`).join('')}</ul>` : ''}</li>`)
        .join('');
      return `<tr><td>${esc(c.control)}</td><td>${esc(c.title)}</td><td class="s ${c.state.replace(' ', '-')}">${esc(c.state)}</td><td><ul>${details}</ul></td></tr>`;
    })
    .join('\n');
  const organisational = report.organisational.map((o) => `<li>${esc(o.promise)}: <em>${esc(o.state)}</em></li>`).join('');
  const summary = Object.entries(report.summary).map(([state, n]) => `${n} ${esc(state)}`).join(', ');
  // `<` escaped so the JSON cannot close its element.
  const json = JSON.stringify(signed).replace(/</g, '\\u003c');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${esc(TRUST_HTML_META_CSP)}">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width,initial-scale=1">
<title>Trust report — ${esc(report.origin)}</title>
<style>${STYLE}</style></head>
<body>
<h1>Trust report</h1>
<p>${esc(report.origin)} — generated ${esc(report.generatedAt)} from live checks made at that moment${report.redacted ? ' (public copy: evidence withheld)' : ''}. ${summary}.</p>
<p><small>Signed with the audit checkpoint key <code>${esc(signed.signature.kid)}</code> (EdDSA over the RFC 8785 bytes of <code>report</code>); verify with the keys at /.well-known/jwks.json. A control is never shown active unless a check of it succeeded now; "not verified" says why no check was made.</small></p>
<table><thead><tr><th>Control</th><th>What</th><th>State</th><th>Evidence</th></tr></thead><tbody>
${rows}
</tbody></table>
<h2>Organisational — not verifiable by this software</h2>
<ul>${organisational}</ul>
<script type="application/json" id="signed-report">${json}</script>
</body></html>
`;
}
