import type { GuardKind } from '../route.ts';
import { apiKeyGuard } from './api-key.ts';
import { cronGuard } from './cron.ts';
import { metricsGuard } from './metrics.ts';
import { publicGuard } from './public.ts';
import { sessionGuard } from './session.ts';
import type { GuardFn } from './types.ts';
import { webhookGuard } from './webhook.ts';

/** Every guard kind and what it checks (docs/guards.md is generated from this). */
export const GUARDS: Record<GuardKind, { run: GuardFn; doc: string }> = {
  public: { run: publicGuard, doc: 'Anyone; rate limited by client IP.' },
  session: { run: sessionGuard, doc: 'A signed-in user: `Authorization: Bearer <access token>`.' },
  apiKey: { run: apiKeyGuard, doc: 'A Gatehouse API key with the named scope, or a client token minted from one (GW-6, at most its scopes): `Authorization: Bearer <key>` or `x-api-key`.' },
  webhook: { run: webhookGuard, doc: 'A provider\'s signed webhook, verified over the raw body.' },
  cron: { run: cronGuard, doc: 'A scheduler presenting `cron.secret` (or one of `cron.previousSecrets` during a rotation): `Authorization: Bearer <secret>`.' },
  metrics: { run: metricsGuard, doc: 'A scraper presenting `metrics.token` (or metrics configured open).' },
};
