/**
 * The trust report's live check of inbound webhooks (EDGE-6): the age of the verification secrets
 * (oldest and newest) and the endpoints whose every secret has expired, which can verify nothing:
 * they refuse every delivery, so the control is `misconfigured` for them. Read per tenant: the
 * webhook tables force row-level security, on the owner too.
 */
import { forTenants, type TrustCheck } from '../trust/index.ts';

const DAY = 86_400_000;

export const webhooksTrustCheck: TrustCheck = {
  control: 'EDGE-6',
  name: 'webhook-secrets',
  run: async (ctx) => {
    const at = new Date(ctx.now());
    const r = { endpoints: 0, expired_only: 0, secrets: 0, oldest: null as Date | null, newest: null as Date | null };
    const { read, total } = await forTenants(ctx, async (_id, tx) => {
      const { rows } = await tx.query<{ endpoints: number; expired_only: number; secrets: number; oldest: Date | null; newest: Date | null }>(
        `select (select count(*)::int from webhook_endpoints) as endpoints,
                (select count(*)::int from webhook_endpoints e where exists (select 1 from webhook_secrets s where s.endpoint_id = e.id)
                   and not exists (select 1 from webhook_secrets s where s.endpoint_id = e.id and (s.expires_at is null or s.expires_at > $1))) as expired_only,
                (select count(*)::int from webhook_secrets where expires_at is null or expires_at > $1) as secrets,
                (select min(created_at) from webhook_secrets where expires_at is null or expires_at > $1) as oldest,
                (select max(created_at) from webhook_secrets where expires_at is null or expires_at > $1) as newest`,
        [at],
      );
      const one = rows[0];
      if (!one) return;
      r.endpoints += one.endpoints;
      r.expired_only += one.expired_only;
      r.secrets += one.secrets;
      if (one.oldest && (!r.oldest || new Date(one.oldest) < new Date(r.oldest))) r.oldest = one.oldest;
      if (one.newest && (!r.newest || new Date(one.newest) > new Date(r.newest))) r.newest = one.newest;
    });
    const age = (d: Date | null): string => (d ? `${Math.floor((at.getTime() - new Date(d).getTime()) / DAY)} day(s)` : 'none');
    const evidence = [`${r.endpoints} endpoint(s) in ${read} of ${total} tenants read, ${r.secrets} secret(s) in force; oldest ${age(r.oldest)}, newest ${age(r.newest)}`, `${r.expired_only} endpoint(s) whose every secret has expired`];
    if (r.expired_only > 0) return { state: 'misconfigured', evidence, why: `${r.expired_only} webhook endpoint(s) have only expired secrets and refuse every delivery` };
    return { state: 'active', evidence };
  },
};
