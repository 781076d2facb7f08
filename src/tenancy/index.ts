/**
 * Builds the organizations feature and the authorizer the server calls for every route that
 * declares a permission.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { publicOriginOf, type Config } from '../config/schema.ts';
import { ACCOUNT_CLEANUP, ACCOUNT_DELETE_CHECKS, IDENTITY, type MailQueue } from '../identity/index.ts';
import { AUDIT } from '../audit/index.ts';
import { defineModule, hook, moduleRef } from '../server/module.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { Feature, Principal, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { createAuthorityCache, type AuthorityCache } from './authority.ts';
import { createInvitations, type Invitations } from './invitations.ts';
import { createOrgs, type Orgs, type TenancyDeps } from './orgs.ts';
import { createTenancyFeature } from './routes/index.ts';
import { createWorkspaces, type Workspaces } from './workspaces.ts';
import { TENANCY_AUDIT_ACTIONS } from './audit-actions.ts';

// What other features use of tenancy (they import it only from here; eslint.config.js).
export { isUuid, TENANCY_EVICT_CHANNEL } from './authority.ts';
export { canGrant, isRole, type Role } from './permissions.ts';

export interface Tenancy {
  feature: Feature;
  verifiers: Pick<Verifiers, 'authorize'>;
  authority: AuthorityCache;
  orgs: Orgs;
  workspaces: Workspaces;
  invitations: Invitations;
  close: () => Promise<void>;
}

export async function createTenancy(deps: {
  config: Config;
  db: Db;
  kv: Kv;
  keyring: Keyring;
  mailer: MailQueue;
  audit: AuditLog;
  logger: Logger;
  now: () => number;
  /** Whether a session has a verified second factor (identity's MFA); orgs that require MFA admit nobody without it. */
  mfaSatisfied?: (principal: Principal) => Promise<boolean>;
}): Promise<Tenancy> {
  const { config, db, kv, keyring, mailer, audit, logger, now } = deps;
  const authority = await createAuthorityCache({
    db,
    kv,
    logger,
    ttlMs: config.tenancy.authorityCacheSeconds * 1000,
    now,
    // A member refused by the matrix is a guard block worth a line in the org's log.
    onDenied: async (orgId, permission) => {
      await audit.record({ tenantId: orgId, action: 'authz.denied', data: { permission } });
    },
    ...(deps.mfaSatisfied ? { mfaSatisfied: deps.mfaSatisfied } : {}),
  });
  const base: TenancyDeps = {
    db,
    audit,
    keyring,
    evictOrg: authority.evictOrg,
    now,
    limits: {
      maxOrgsPerUser: config.tenancy.maxOrgsPerUser,
      maxWorkspacesPerOrg: config.tenancy.maxWorkspacesPerOrg,
      maxPendingInvitations: config.tenancy.maxPendingInvitations,
      invitationTtlMs: config.tenancy.invitationTtlHours * 3600 * 1000,
    },
  };
  const orgs = createOrgs(base);
  const workspaces = createWorkspaces(base);
  const invitations = createInvitations({ ...base, mailer, origin: publicOriginOf(config) });
  return {
    feature: createTenancyFeature({ orgs, workspaces, invitations, mfaSatisfied: deps.mfaSatisfied }),
    verifiers: { authorize: authority.authorize },
    authority,
    orgs,
    workspaces,
    invitations,
    close: authority.close,
  };
}

export const TENANCY = moduleRef<Tenancy>('tenancy');

/** Tenancy as a module: orgs, workspaces, invitations and the authorizer every permission route uses. */
export const tenancyModule = defineModule({
  ref: TENANCY,
  dependsOn: [AUDIT, IDENTITY],
  auditActions: TENANCY_AUDIT_ACTIONS,
  create: async (ctx) => {
    const identity = ctx.use(IDENTITY);
    const tenancy = await createTenancy({ config: ctx.config, db: ctx.db, kv: ctx.kv, keyring: ctx.keyring, mailer: identity.mailer, audit: ctx.use(AUDIT), logger: ctx.logger, now: ctx.now, mfaSatisfied: identity.sessionHasSecondFactor });
    return {
      api: tenancy,
      feature: tenancy.feature,
      verifiers: tenancy.verifiers,
      // Deleting an account: refused while it is an org's last owner; afterwards, its memberships go.
      hooks: [hook(ACCOUNT_DELETE_CHECKS, tenancy.orgs.assertNotLastOwner), hook(ACCOUNT_CLEANUP, tenancy.orgs.removeUserEverywhere)],
      close: tenancy.close,
    };
  },
});
