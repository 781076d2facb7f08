/**
 * The audit actions of budgets (AUDIT-1), in the org's log: set or deleted by an admin; a soft
 * limit crossed (once per period); a hard limit refusing calls (once per budget, period and node).
 */
export const BUDGET_AUDIT_ACTIONS = [
  'budget.set',
  'budget.deleted',
  'budget.soft_limit',
  'budget.exceeded',
] as const;
