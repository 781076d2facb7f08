/**
 * Enterprise SSO (AUTH-9) as a feature of its own, and its public surface: the SSO service, its
 * feature, the sign-in policy identity runs ("this org requires SSO") and the cleanup account
 * deletion runs. It uses identity, tenancy and audit only through their index.ts; its parts by
 * concern: sso-connections.ts, sso-domains.ts, sso-policy.ts, sso-sign-in.ts + sso-provisioning.ts.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { publicOriginOf, type Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Feature } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Accounts } from '../identity/index.ts';
import { createOidcProtocol } from './oidc.ts';
import { createSsoFeature } from './routes.ts';
import { createSamlProtocol } from './saml.ts';
import { createSso, type Sso } from './sso.ts';
import { createStateSigner } from './state.ts';
import { AUDIT } from '../audit/index.ts';
import { defineModule, hook, moduleRef } from '../server/module.ts';
import { TENANCY } from '../tenancy/index.ts';
import { ACCOUNT_CLEANUP, IDENTITY, SIGN_IN_POLICY } from '../identity/index.ts';
import { SSO_SEALED_COLUMNS } from './sso.ts';
import { SSO_AUDIT_ACTIONS } from './audit-actions.ts';

export { SSO_SEALED_COLUMNS };

export interface Federation {
  sso: Sso;
  feature: Feature;
}

export function createFederation(deps: {
  config: Config;
  db: Db;
  kv: Kv;
  keyring: Keyring;
  audit: AuditLog;
  accounts: Accounts;
  logger: Logger;
  now: () => number;
  evictOrg: (orgId: string) => Promise<void>;
}): Federation {
  const { config, db, kv, keyring, audit, accounts, logger, now, evictOrg } = deps;
  const publicOrigin = publicOriginOf(config);
  const stateTtlMs = config.sso.stateTtlSeconds * 1000;
  const signer = createStateSigner(kv, now);
  const oidc = createOidcProtocol({
    kv,
    signer,
    publicOrigin,
    stateTtlMs,
    clockSkewSeconds: config.sso.clockSkewSeconds,
    allowInsecureRequests: config.sso.allowInsecureRequests,
    now,
  });
  const saml = createSamlProtocol({ kv, publicOrigin, clockSkewMs: config.sso.clockSkewSeconds * 1000, requestTtlMs: stateTtlMs, now });
  const sso = createSso({
    db,
    keyring,
    audit,
    accounts,
    oidc,
    saml,
    signer,
    logger,
    now,
    publicOrigin,
    stateTtlMs,
    allowInsecureUrls: config.sso.allowInsecureRequests,
    evictOrg,
  });
  return { sso, feature: createSsoFeature({ sso, publicOrigin, returnUrls: config.auth.returnUrls, now }) };
}

export const FEDERATION = moduleRef<Federation>('federation');

/** Enterprise SSO as a module: it adds the "this org requires SSO" sign-in policy and forgets deleted accounts' links. */
export const federationModule = defineModule({
  ref: FEDERATION,
  dependsOn: [AUDIT, IDENTITY, TENANCY],
  auditActions: SSO_AUDIT_ACTIONS,
  sealedColumns: SSO_SEALED_COLUMNS,
  create: (ctx) => {
    const federation = createFederation({ config: ctx.config, db: ctx.db, kv: ctx.kv, keyring: ctx.keyring, audit: ctx.use(AUDIT), accounts: ctx.use(IDENTITY).accounts, logger: ctx.logger, now: ctx.now, evictOrg: ctx.use(TENANCY).authority.evictOrg });
    return {
      api: federation,
      feature: federation.feature,
      hooks: [hook(SIGN_IN_POLICY, federation.sso.enforceSsoRequired), hook(ACCOUNT_CLEANUP, federation.sso.forgetUser)],
    };
  },
});
