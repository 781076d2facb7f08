/**
 * Redact mode: instead of refusing the call, the parts of the text that rules matched, and
 * embedded payloads whose decoding matched a rule, are replaced by a marker. The result is the
 * normalised text (NFKC, invisible characters removed, homoglyphs folded): the tricks the guard
 * undoes are not passed upstream either. The caller re-inspects the result and blocks when it is
 * still over the block threshold.
 */
import { decodeViews } from './decode.ts';
import { normalize } from './normalize.ts';
import { matchRules, RULES, ruleText, type Rule } from './rules.ts';

export const REDACTION_MARKER = '[removed by input guard]';

// The same bounded patterns as decode.ts (see the note there).
// eslint-disable-next-line security/detect-unsafe-regex
const ENCODED_RUNS = [/[A-Za-z0-9+/_-]{16,}={0,2}/g, /(?:\\x[0-9a-fA-F]{2}){4,}/g, /\b(?:[0-9a-fA-F]{2}){8,}\b/g, /(?:%[0-9a-fA-F]{2}[A-Za-z0-9._~+-]{0,8}){3,}/g];

function globalCaseless(pattern: RegExp): RegExp {
  // The source is one of the built-in rules (src/guard/rules.ts), never input.
  // eslint-disable-next-line security/detect-non-literal-regexp
  return new RegExp(pattern.source, 'gi');
}

/** Removes what the enabled `rules` match from `text`; returns the text and whether it changed. */
export function redact(text: string, rules: readonly Rule[] = RULES): { text: string; changed: boolean } {
  // Whitespace runs collapsed as for the rules (ruleText), so no rule's `\s*` backtracks over a long run.
  let out = normalize(text).text.replace(/\s+/g, (run) => (run.includes('\n') ? '\n' : ' '));
  const before = out;
  for (const pattern of ENCODED_RUNS) {
    out = out.replace(pattern, (run) => {
      const decodedHits = decodeViews(run, { maxDepth: 3, maxViews: 8, maxViewChars: 64 * 1024 })
        .slice(1)
        .some((view) => matchRules(ruleText(view.text), rules).length > 0);
      return decodedHits ? REDACTION_MARKER : run;
    });
  }
  for (const rule of rules) out = out.replace(globalCaseless(rule.pattern), REDACTION_MARKER);
  return { text: out, changed: out !== before || out !== text };
}
