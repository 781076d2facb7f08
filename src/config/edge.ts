/**
 * The `jobs` and `webhooks` sections of the configuration (EDGE-6, EDGE-7): the in-process
 * scheduler, and inbound webhook verification with the relay to each org's destination.
 * Kept beside schema.ts so the config schema imports no feature.
 */
import { Cron } from 'croner';
import { z } from 'zod';
import { cidr, hostPattern } from './gateway.ts';
import { opt } from './option-meta.ts';

/** A cron expression croner accepts (5 fields, or 6 with seconds first), checked at load. */
export const cronExpression = z.string().superRefine((value, ctx) => {
  try {
    new Cron(value, { paused: true, timezone: 'UTC' }).stop();
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: `not a cron expression: ${(err as Error).message}` });
  }
});

const JOB_NAME_PART = /^[a-z][a-z0-9-]{0,40}$/;
const jobName = z
  .string()
  .max(100)
  .refine((name) => name.split('.').length >= 2 && name.split('.').every((part) => JOB_NAME_PART.test(part)), 'must be a job name such as audit.checkpoint');

export const jobsSection = z
  .strictObject({
    enabled: opt(z.boolean().default(true), {
      doc: 'Run the scheduled jobs on this node. Each run happens on one node of the cluster (a PostgreSQL advisory lock and one history row per scheduled time); off, jobs run only through `POST /v1/cron/:job` or `gatehouse jobs run`.',
    }),
    schedules: opt(z.record(jobName, cronExpression).default({}), {
      doc: 'Per job, a cron expression (UTC; five fields, or six with seconds first) replacing its default, as JSON: `{"audit.prune": "0 4 * * *"}`. `gatehouse jobs list` shows every job and its schedule; a name no job has refuses to start.',
    }),
    disabled: opt(z.array(jobName).max(100).default([]), { doc: 'Jobs the scheduler never starts on its own (still runnable through the cron endpoint or the CLI).' }),
    historyDays: opt(z.number().int().min(1).max(3650).default(30), { doc: 'Job history rows older than this are removed by the `jobs.prune-history` job.' }),
  })
  .prefault({});

export const webhooksSection = z
  .strictObject({
    toleranceSeconds: opt(z.number().int().min(5).max(3600).default(300), {
      doc: 'Largest difference between a signed webhook timestamp and this node\'s clock (Stripe, Paddle, Mercado Pago, Standard Webhooks); older or newer is refused with WEBHOOK_TIMESTAMP_OUT_OF_TOLERANCE.',
    }),
    replayDays: opt(z.number().int().min(1).max(3650).default(30), {
      doc: 'How long an event id is remembered per endpoint: a second event with the same id is refused (WEBHOOK_REPLAYED) for this long. Far longer than the timestamp tolerance, and what protects the schemes without a timestamp (GitHub, Meta).',
    }),
    retentionDays: opt(z.number().int().min(1).max(3650).default(30), { doc: 'Stored events (sealed payloads) and their delivery attempts are removed this long after they were received.' }),
    bodyLimitBytes: opt(z.number().int().min(1024).max(16 * 1024 * 1024).default(1024 * 1024), { doc: 'Largest inbound webhook body; larger is refused with 413 BODY_TOO_LARGE.' }),
    perEndpointPerMinute: opt(z.number().int().min(1).max(1_000_000).default(6000), {
      doc: 'Verified deliveries one endpoint may receive per minute (its own limit in place of the write category\'s per-principal one; a provider\'s burst is larger than a person\'s). Per-IP limits of the write category still apply before verification.',
    }),
    endpointCacheSeconds: opt(z.number().int().min(0).max(300).default(30), {
      doc: 'How long a node keeps an endpoint\'s opened secrets in memory for verifying deliveries (0: read the database on every delivery). Every change (secret added or removed, endpoint changed or deleted, org deleted) evicts it on every node at once through kv pub/sub; while this node\'s kv subscription is down nothing is cached.',
    }),
    endpointCacheEntries: opt(z.number().int().min(1).max(1_000_000).default(10_000), { doc: 'Most endpoints one node keeps in that cache (the oldest entry leaves first).' }),
    maxEndpointsPerOrg: opt(z.number().int().min(1).max(10_000).default(50), { doc: 'Most webhook endpoints one org may have.' }),
    maxSecretsPerEndpoint: opt(z.number().int().min(1).max(20).default(5), { doc: 'Most provider secrets one endpoint holds at once (rotation keeps the old ones valid until they expire).' }),
    relay: z
      .strictObject({
        allowedHosts: opt(z.array(hostPattern).max(1000).default([]), {
          doc: 'Hosts (with ports, as in `gateway.upstream.allowedHosts`) that relay destination URLs may name. Empty: any public host on 443. The resolved address must be public unless in `allowedCidrs`.',
        }),
        allowedCidrs: opt(z.array(cidr).max(1000).default([]), { doc: 'CIDRs a destination may resolve to although private, loopback or reserved (an app on the same network).' }),
        allowInsecureHttp: opt(z.boolean().default(false), { doc: 'Allow plain `http:` destination URLs.' }),
        maxAttempts: opt(z.number().int().min(1).max(100).default(12), { doc: 'Delivery attempts of an event before it is dead-lettered (status dead; redeliver through the API).' }),
        retryBaseMs: opt(z.number().int().min(100).max(3_600_000).default(10_000), {
          doc: 'Wait before the first retry; each further retry doubles it (with jitter between half and all of it), up to `retryMaxMs`.',
        }),
        retryMaxMs: opt(z.number().int().min(1_000).max(86_400_000).default(3_600_000), { doc: 'Longest wait between two delivery attempts.' }),
        timeoutMs: opt(z.number().int().min(100).max(120_000).default(10_000), { doc: 'Time allowed for a destination to answer one delivery.' }),
        batchSize: opt(z.number().int().min(1).max(1000).default(50), { doc: 'Events one node claims per delivery pass.' }),
        concurrency: opt(z.number().int().min(1).max(256).default(8), { doc: 'Deliveries one node makes at once.' }),
      })
      .prefault({}),
  })
  .prefault({});
