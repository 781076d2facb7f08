/**
 * Budget categories, periods and error codes (ABUSE-2). Periods are UTC days and months; a
 * reservation counts in the periods it was made in, whenever its call settles (a call that starts
 * at 23:59:59 and ends after midnight counts in the day it started).
 */
import type { ErrorCodeInfo } from '../server/error-codes.ts';

export const BUDGET_CATEGORIES = ['ai_tokens', 'ai_cost', 'embedding_tokens', 'files', 'file_bytes', 'messages', 'tool_calls'] as const;
export type BudgetCategory = (typeof BUDGET_CATEGORIES)[number];
export const BUDGET_PERIODS = ['day', 'month'] as const;
export type BudgetPeriod = (typeof BUDGET_PERIODS)[number];

/** Largest limit accepted: a billion dollars in micro-dollars; far beyond any real budget, far below 2^53. */
export const MAX_BUDGET_LIMIT = 1_000_000_000_000_000;

const UNITS: Readonly<Record<BudgetCategory, string>> = {
  ai_tokens: 'input plus output tokens of chat and messages calls',
  ai_cost: 'micro-dollars (from `gateway.prices`) of every AI call',
  embedding_tokens: 'input tokens of embeddings calls',
  files: 'files (reported through POST /v1/budgets/consume)',
  file_bytes: 'file bytes (reported through POST /v1/budgets/consume)',
  messages: 'messages sent (reported through POST /v1/budgets/consume)',
  tool_calls: 'MCP tool calls through the MCP gateway (`/v1/mcp/:workspace`)',
};

export function unitOf(category: BudgetCategory): string {
  return UNITS[category];
}

/** The error code of a hard-limit refusal in a category. */
export function exceededCode(category: BudgetCategory): string {
  return `BUDGET_EXCEEDED_${category.toUpperCase()}`;
}

export const BUDGET_ERROR_CODES: Record<string, ErrorCodeInfo> = {
  ...Object.fromEntries(
    BUDGET_CATEGORIES.map((c) => [
      exceededCode(c),
      {
        status: 429,
        message: `The ${c} budget of this organization, workspace or API key is used up for this period.`,
        doc: `The call would take a ${c} budget (${UNITS[c]}) of its org, workspace or API key past its hard limit, counting its worst case (for AI calls: the prompt's tokens plus \`max_tokens\`). \`Retry-After\` gives seconds until the budget's period (UTC day or month) ends. In the vendor's shape on the AI routes.`,
      },
    ]),
  ),
  BUDGET_VERSION_CONFLICT: {
    status: 409,
    message: 'The budget was changed by someone else; read it again and retry.',
    doc: 'A budget change named `ifVersion` and the budget is at another version (another admin changed it in between). Nothing was changed.',
  },
};

/** `YYYY-MM-DD` and `YYYY-MM` of an instant, UTC. */
export function periodKeys(ms: number): { day: string; month: string } {
  const iso = new Date(ms).toISOString();
  return { day: iso.slice(0, 10), month: iso.slice(0, 7) };
}

/** The first instant after the period that contains `ms` (ms, UTC). */
export function periodEnd(period: BudgetPeriod, ms: number): number {
  const d = new Date(ms);
  return period === 'day' ? Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) : Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
}

/** The first instant of a period key and of the next period (ms, UTC). */
export function periodBounds(period: BudgetPeriod, key: string): { from: number; to: number } {
  const [y, m, d] = key.split('-').map(Number) as [number, number, number?];
  const from = period === 'day' ? Date.UTC(y, m - 1, d ?? 1) : Date.UTC(y, m - 1, 1);
  return { from, to: periodEnd(period, from) };
}
