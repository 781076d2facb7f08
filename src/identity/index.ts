/**
 * Builds the accounts feature and the session verifier from the node's services.
 */
import { join, resolve } from 'node:path';
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import { publicOriginOf, type Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Feature, Principal, Verifiers } from '../server/route.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { createAccounts, type AccountLifecycle, type Accounts, type IdentityAudit } from './accounts.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import { currentRequest } from '../server/request-context.ts';
import { createEmailChange } from './email-change.ts';
import { createMailer, type Mailer } from './mailer.ts';
import { createLiveMailer } from './live-mailer.ts';
import type { LiveConfig } from '../config/live.ts';
import { createMailQueue, MAIL_SEALED_COLUMNS, pruneMailQueue, type MailQueue } from './mail-queue.ts';
import { createMfa, type Mfa } from './mfa.ts';
import { passkeyRoutes } from './routes/passkeys.ts';
import { createPasskeys, PASSKEY_ERROR_CODES, type Passkeys } from './passkeys.ts';
import { createIdentityFeature } from './routes/index.ts';
import { createSessions, type Sessions } from './sessions.ts';
import { createSocial, type Social } from './social.ts';
import { AUDIT } from '../audit/index.ts';
import { defineModule, hookPoint, moduleRef } from '../server/module.ts';
import { MFA_SEALED_COLUMNS } from './mfa.ts';
import { registerMailQueueMetrics } from './mail-queue.ts';
import { IDENTITY_AUDIT_ACTIONS } from './audit-actions.ts';

// What other features use of identity (they import it only from here; eslint.config.js).
export { normalizeEmail, type Accounts, type SecondFactorRequired, type SignedIn } from './accounts.ts';
export { DEVICE_COOKIE } from './devices.ts';
export { checkReturnUrl, redirectAfterCallback, RETURN_COOKIE, RETURN_COOKIE_OPTIONS, returnUrlOf, type CallbackOutcome } from './return-url.ts';
export { hashToken, type SessionContext } from './sessions.ts';
export type { MailQueue } from './mail-queue.ts';
// What the CLI uses of identity.
export { listOutbox, readOutbox, type OutboxEntry, type Mailer, type MailMessage } from './mailer.ts';
export { mailQueueReport } from './mail-queue.ts';
export { clearSessionCookies, cookieResponse, sessionOf, setSessionCookies, signedInReply, tokenBody, tokensResponse } from './session-reply.ts';

export interface Identity {
  feature: Feature;
  verifiers: Pick<Verifiers, 'session'>;
  accounts: Accounts;
  sessions: Sessions;
  mfa: Mfa;
  passkeys: Passkeys;
  social: Social;
  /** Whether the principal's session verified a factor the user still has (orgs that require MFA ask this). */
  sessionHasSecondFactor: (principal: Principal) => Promise<boolean>;
  /** Every mail goes through this queue (the configured transport delivers it in the background). */
  mailer: MailQueue;
  /** Other features register what account deletion must check and clean up. */
  lifecycle: AccountLifecycle;
  close: () => Promise<void>;
}

/** Where mail goes without SMTP. */
export function outboxDirOf(config: Config): string {
  return config.mail.outboxDir ? resolve(config.mail.outboxDir) : join(resolve(config.storage.dataDir), 'outbox');
}

export function createIdentity(deps: {
  config: Config;
  db: Db;
  kv: Kv;
  keyring: Keyring;
  signingKeys: SigningKeys;
  logger: Logger;
  now: () => number;
  /** Replaces the configured transport the queue delivers through (tests). */
  mailer?: Mailer;
  /** The live configuration: the SMTP URL and sender reload from it, and so do the CORS origins CSRF accepts. */
  live?: LiveConfig;
  /** Account and sign-in events go to the platform log. */
  audit?: AuditLog;
  /** What account deletion checks and cleans up, and what may refuse a sign-in (other features' hooks). */
  lifecycle?: AccountLifecycle;
}): Identity {
  const { config, db, kv, keyring, signingKeys, logger, now } = deps;
  const origin = publicOriginOf(config);
  const transport =
    deps.mailer ??
    (deps.live
      ? createLiveMailer({ live: deps.live, outboxDir: outboxDirOf, logger, now })
      : createMailer({ ...(config.mail.smtpUrl ? { smtpUrl: config.mail.smtpUrl } : {}), from: config.mail.from, outboxDir: outboxDirOf(config), logger, now }));
  const { maxAttempts, retryBaseMs, retryMaxMs, pollMs, retentionDays } = config.mail;
  const mailer = createMailQueue({ db, keyring, transport, settings: { maxAttempts, retryBaseMs, retryMaxMs, pollMs, retentionDays }, logger, now });
  const audit = deps.audit;
  // Account and session events go to the platform log; the subject is the target, the actor the
  // signed-in caller (the subject itself for a sign-in, anonymous for other unauthenticated calls).
  const note: IdentityAudit | undefined = audit
    ? async (action, subject, data) => {
        await audit.record({
          tenantId: PLATFORM_TENANT_ID,
          action,
          target: subject ? { type: 'user', id: subject } : null,
          ...(data ? { data } : {}),
          // A successful sign-in is the subject acting; other unauthenticated events name no actor.
          ...(action === 'auth.login.succeeded' && !currentRequest()?.principal ? { actor: { type: 'user', id: subject } } : {}),
        });
      }
    : undefined;
  const sessions = createSessions({
    ...(note ? { audit: note } : {}),
    db,
    kv,
    signingKeys,
    logger,
    now,
    settings: {
      issuer: config.auth.issuer ?? origin,
      audience: config.auth.audience,
      accessTtlSeconds: config.auth.accessTokenTtlSeconds,
      refreshIdleSeconds: config.auth.sessionIdleSeconds,
      refreshAbsoluteSeconds: config.auth.sessionAbsoluteSeconds,
      reuseGraceSeconds: config.auth.refreshReuseGraceSeconds,
      clockSkewSeconds: config.auth.accessTokenClockSkewSeconds,
    },
  });
  const lifecycle: AccountLifecycle = deps.lifecycle ?? { check: [], cleanup: [] };
  const passkeys = createPasskeys({ db, kv, mailer, config, logger, now, publicOrigin: origin, ...(note ? { audit: note } : {}) });
  const mfa = createMfa({ db, kv, keyring, sessions, mailer, config, logger, now, publicOrigin: origin, passkeys, ...(note ? { audit: note } : {}) });
  const accounts = createAccounts({ db, kv, keyring, sessions, mfa, mailer, config, logger, now, publicOrigin: origin, lifecycle, ...(note ? { audit: note } : {}) });
  const social = createSocial({ config, ...(deps.live ? { live: deps.live } : {}), db, kv, accounts, logger, now, publicOrigin: origin, ...(note ? { audit: note } : {}) });
  const emailChange = createEmailChange({
    db,
    kv,
    mfa,
    sessions,
    mailer,
    logger,
    now,
    publicOrigin: origin,
    tokenTtlMs: config.auth.emailTokenTtlSeconds * 1000,
    ...(note ? { audit: note } : {}),
  });
  const accountsFeature = createIdentityFeature({ accounts, sessions, mfa, social, emailChange, publicOrigin: origin, returnUrls: config.auth.returnUrls, socialProviders: config.social.providers, now, allowedOrigins: () => [origin, ...(deps.live?.current() ?? config).cors.origins] });
  // Passkeys belong to the accounts feature: their routes and error codes join it.
  const feature: Feature = {
    ...accountsFeature,
    errorCodes: { ...accountsFeature.errorCodes, ...PASSKEY_ERROR_CODES },
    // The mail queue is identity's: its sealed message bodies are re-encrypted with the rest.
    sealedColumns: [...(accountsFeature.sealedColumns ?? []), ...MAIL_SEALED_COLUMNS],
    routes: [...accountsFeature.routes, ...passkeyRoutes({ passkeys, mfa, accounts, sessions, now })],
  };
  return {
    feature,
    accounts,
    sessions,
    mfa,
    passkeys,
    social,
    sessionHasSecondFactor: async (principal) => {
      if (principal.kind !== 'user' || !principal.sessionId) return false;
      const [active, at] = await Promise.all([mfa.hasActiveFactor(principal.id), sessions.secondFactorAt(principal.id, principal.sessionId)]);
      return active && at !== null;
    },
    mailer,
    lifecycle,
    verifiers: {
      session: async (token) => {
        const access = await sessions.verifyAccess(token);
        return access ? { kind: 'user', id: access.userId, sessionId: access.sessionId } : null;
      },
    },
    close: () => mailer.close(),
  };
}

export const IDENTITY = moduleRef<Identity>('identity');
/** Checks that may refuse an account's deletion (e.g. "the last owner of an org"); throw to refuse. */
export const ACCOUNT_DELETE_CHECKS = hookPoint<(userId: string) => Promise<void>>('identity.accountDeleteChecks');
/** What other features forget of an account once it is deleted. */
export const ACCOUNT_CLEANUP = hookPoint<(userId: string) => Promise<void>>('identity.accountCleanup');
/** Run once something proved the user, before a session or a second step; throw to refuse the sign-in. */
export const SIGN_IN_POLICY = hookPoint<(userId: string, method: string) => Promise<void>>('identity.signInPolicy');

/**
 * Identity as a module. Reads the override `mailer` (a Mailer replacing the configured transport:
 * tests capture mail with it).
 */
export const identityModule = defineModule({
  ref: IDENTITY,
  dependsOn: [AUDIT],
  auditActions: IDENTITY_AUDIT_ACTIONS,
  sealedColumns: [...MFA_SEALED_COLUMNS, ...MAIL_SEALED_COLUMNS],
  create: (ctx) => {
    const { hooks } = ctx;
    // Read at each use: the features that fill these points are created after identity.
    const lifecycle: AccountLifecycle = {
      get check() {
        return hooks.list(ACCOUNT_DELETE_CHECKS);
      },
      get cleanup() {
        return hooks.list(ACCOUNT_CLEANUP);
      },
      get signInPolicy() {
        return hooks.list(SIGN_IN_POLICY);
      },
    };
    const mailer = ctx.overrides.mailer as Mailer | undefined;
    const identity = createIdentity({ config: ctx.config, live: ctx.live, db: ctx.db, kv: ctx.kv, keyring: ctx.keyring, signingKeys: ctx.signingKeys, logger: ctx.logger, now: ctx.now, audit: ctx.use(AUDIT), lifecycle, ...(mailer ? { mailer } : {}) });
    return {
      api: identity,
      feature: identity.feature,
      verifiers: identity.verifiers,
      onServer: (app) => registerMailQueueMetrics(app.gatehouse.metrics.registry, identity.mailer),
      jobs: [
        {
          name: 'mail.prune',
          schedule: '41 * * * *',
          summary: 'Deletes sent and given-up messages of the mail queue older than mail.retentionDays (pending ones stay).',
          run: async ({ now }) => ({ removed: await pruneMailQueue(ctx.db, now(), ctx.config.mail.retentionDays) }),
        },
      ],
      close: identity.close,
    };
  },
});
