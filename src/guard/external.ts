/**
 * Layer 4 of the input guard: an external classifier behind an HTTP endpoint, for operators who
 * run Llama Prompt Guard, a DeBERTa injection model or a vendor service next to Gatehouse.
 *
 * Protocol: `POST <url>` with `{"text": "..."}`; the answer is either `{"score": 0..1}` (probability
 * of an attack) or a text-classification list `[{"label": "INJECTION", "score": 0.98}, ...]` (labels
 * containing injection / jailbreak / malicious / unsafe / LABEL_1 are attack labels).
 *
 * Every call has a timeout. What happens when the classifier cannot answer (timeout, refused
 * connection, non-2xx, unreadable answer) is the operator's explicit choice: `closed` (the
 * default) counts the failure as a detection, so the policy flags or blocks; `open` lets the
 * other layers decide alone. A failure is never silently an "allow" unless fail-open was chosen.
 */

/** What a failure of the external classifier means. */
export type FailMode = 'open' | 'closed';

/** The answer of an external classifier. */
export type ExternalResult = { ok: true; score: number } | { ok: false; reason: 'timeout' | 'unreachable' | 'bad_status' | 'bad_answer' };

/** An external classifier: any object with this shape can be plugged in. */
export interface ExternalClassifier {
  readonly failMode: FailMode;
  classify(text: string): Promise<ExternalResult>;
}

/** Options of the HTTP classifier. */
export interface HttpClassifierOptions {
  url: string;
  timeoutMs: number;
  failMode?: FailMode;
  /** Extra request headers (e.g. an Authorization header for the classifier service). */
  headers?: Record<string, string>;
  /** Injectable for tests; the global fetch by default. */
  fetch?: typeof fetch;
}

const MAX_ANSWER_BYTES = 64 * 1024;
const ATTACK_LABEL = /injection|jailbreak|malicious|unsafe|attack|label_1/i;

function scoreFromAnswer(answer: unknown): number | undefined {
  const inRange = (n: unknown): n is number => typeof n === 'number' && Number.isFinite(n) && n >= 0 && n <= 1;
  if (answer && typeof answer === 'object' && !Array.isArray(answer) && inRange((answer as { score?: unknown }).score)) {
    return (answer as { score: number }).score;
  }
  const list = Array.isArray(answer) && Array.isArray(answer[0]) ? answer[0] : answer;
  if (!Array.isArray(list) || list.length === 0) return undefined;
  let best: number | undefined;
  for (const entry of list as { label?: unknown; score?: unknown }[]) {
    if (!entry || typeof entry.label !== 'string' || !inRange(entry.score)) return undefined;
    const attack = ATTACK_LABEL.test(entry.label) ? entry.score : 1 - entry.score;
    best = best === undefined ? attack : Math.max(best, attack);
  }
  return best;
}

/**
 * An external classifier over HTTP.
 * @example httpClassifier({ url: 'http://promptguard:8000/classify', timeoutMs: 300, failMode: 'closed' })
 */
export function httpClassifier(options: HttpClassifierOptions): ExternalClassifier {
  const doFetch = options.fetch ?? fetch;
  const failMode = options.failMode ?? 'closed';
  return {
    failMode,
    async classify(text: string): Promise<ExternalResult> {
      let response: Response;
      try {
        response = await doFetch(options.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...options.headers },
          body: JSON.stringify({ text }),
          signal: AbortSignal.timeout(options.timeoutMs),
          redirect: 'error',
        });
      } catch (err) {
        const name = (err as { name?: string }).name;
        return { ok: false, reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'unreachable' };
      }
      if (!response.ok) {
        await response.body?.cancel().catch(() => undefined);
        return { ok: false, reason: 'bad_status' };
      }
      try {
        const body = await response.text();
        if (body.length > MAX_ANSWER_BYTES) return { ok: false, reason: 'bad_answer' };
        const score = scoreFromAnswer(JSON.parse(body));
        return score === undefined ? { ok: false, reason: 'bad_answer' } : { ok: true, score };
      } catch (err) {
        const name = (err as { name?: string }).name;
        return { ok: false, reason: name === 'TimeoutError' || name === 'AbortError' ? 'timeout' : 'bad_answer' };
      }
    },
  };
}
