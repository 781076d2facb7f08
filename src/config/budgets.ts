/** The `budgets` section of the configuration (ABUSE-2; src/budgets). */
import { z } from 'zod';
import { opt } from './option-meta.ts';

export const budgetsSection = z
  .strictObject({
    onStoreError: opt(z.enum(['closed', 'open']).default('closed'), {
      doc: 'Budgets (ABUSE-2): when the counter store (Redis) cannot answer a reservation, closed refuses the metered call with 503 SERVICE_UNAVAILABLE + Retry-After; open lets it through, still recorded in the budget ledger (so the counters rebuilt later include it) but not checked against the limit, and logs.',
    }),
    defaultMaxTokens: opt(z.number().int().min(1).max(10_000_000).default(4096), {
      doc: 'Budgets: output tokens reserved for a chat call that sets no `max_tokens` / `max_completion_tokens` (the call then settles what it actually used).',
    }),
    reservationTtlSeconds: opt(z.number().int().min(1).max(86_400).default(900), {
      doc: 'Budgets: a reservation whose call never settled (a node killed, a bug) expires after this long and is settled from the usage records. Keep it above `gateway.timeouts.totalMs`.',
    }),
    sweepSeconds: opt(z.number().int().min(1).max(3_600).default(30), {
      doc: 'Budgets: how often each node looks for expired reservations (one node settles each).',
    }),
    definitionCacheSeconds: opt(z.number().int().min(1).max(3_600).default(60), {
      doc: 'Budgets: how long a node caches an org\'s budget definitions. Changes evict them on every node through kv pub/sub at once; this bounds staleness only if an eviction message is lost (a node whose subscription is down reads the database every call).',
    }),
  })
  .prefault({});
