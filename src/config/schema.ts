/**
 * Every configuration option, once: type, default and documentation.
 * docs/config.md is generated from this file (scripts/gen-docs.ts); a test fails when it is stale.
 *
 * Options marked `secret` are accepted only from the environment (`GATEHOUSE_X`) or from a
 * file named by `GATEHOUSE_X_FILE`, never from the config file, and are masked by `doctor`.
 */
import { z } from 'zod';
import { jobsSection, webhooksSection } from './edge.ts';
import { budgetsSection } from './budgets.ts';
import { gatewaySection } from './gateway.ts';
import { mcpSection } from './mcp.ts';
import { opt } from './option-meta.ts';
import { httpUrlSchema } from './url.ts';
import { socialSection } from './social.ts';
import { tokensSection } from './tokens.ts';
import { kmsSection } from './kms.ts';
import { pkcs11Section } from './pkcs11.ts';
import { backupSection } from './backup.ts';

export { metaOf, type OptionMeta } from './option-meta.ts';

const port = z.number().int().min(0).max(65535);
const window = z.strictObject({
  limit: z.number().int().min(1),
  windowSeconds: z.number().int().min(1).max(86_400),
});
const categoryLimits = z.strictObject({ ip: window, principal: window });

/** Route categories that carry their own rate limits (ABUSE-1). */
export const RATE_CATEGORIES = ['auth', 'signup', 'ai', 'mcp', 'write', 'read', 'upload', 'ops'] as const;
export type RateCategory = (typeof RATE_CATEGORIES)[number];

const defaultLimits: Record<RateCategory, z.infer<typeof categoryLimits>> = {
  auth: { ip: { limit: 30, windowSeconds: 60 }, principal: { limit: 10, windowSeconds: 60 } },
  signup: { ip: { limit: 5, windowSeconds: 3600 }, principal: { limit: 5, windowSeconds: 3600 } },
  ai: { ip: { limit: 600, windowSeconds: 60 }, principal: { limit: 300, windowSeconds: 60 } },
  mcp: { ip: { limit: 1200, windowSeconds: 60 }, principal: { limit: 600, windowSeconds: 60 } },
  write: { ip: { limit: 300, windowSeconds: 60 }, principal: { limit: 120, windowSeconds: 60 } },
  read: { ip: { limit: 1200, windowSeconds: 60 }, principal: { limit: 600, windowSeconds: 60 } },
  upload: { ip: { limit: 30, windowSeconds: 60 }, principal: { limit: 20, windowSeconds: 60 } },
  ops: { ip: { limit: 600, windowSeconds: 60 }, principal: { limit: 600, windowSeconds: 60 } },
};

export const configSchema = z.strictObject({
  server: z
    .strictObject({
      host: opt(z.string().min(1).default('127.0.0.1'), {
        doc: 'Interface to listen on. Loopback by default; set 0.0.0.0 to accept outside connections.',
      }),
      port: opt(port.default(8700), { doc: 'TCP port of the HTTP(S) listener (0 picks a free port).' }),
      publicUrl: opt(httpUrlSchema().optional(), {
        doc: 'The URL clients use to reach Gatehouse (used in security.txt and redirects). Defaults to the listener address.',
      }),
      trustedProxies: opt(z.array(z.string().min(1)).default([]), {
        doc: 'IP addresses or CIDR ranges of reverse proxies whose X-Forwarded-For is believed. Empty: the client IP is the TCP peer, whatever headers say.',
      }),
      bodyLimitBytes: opt(z.number().int().min(1024).max(64 * 1024 * 1024).default(1024 * 1024), {
        doc: 'Largest request body accepted, in bytes (routes may lower or raise it). Larger bodies get 413.',
      }),
      maxJsonDepth: opt(z.number().int().min(2).max(256).default(32), {
        doc: 'Deepest nesting of arrays and objects accepted in a JSON body. Deeper bodies get 400.',
      }),
      shutdownGraceMs: opt(z.number().int().min(0).max(120_000).default(10_000), {
        doc: 'On SIGINT/SIGTERM, how long in-flight requests may take to finish before connections are closed. AI gateway calls still running then end in their client\'s format (a stream with an error event, a JSON call with 503 NODE_SHUTTING_DOWN and Retry-After) and are metered with what they delivered.',
      }),
    })
    .prefault({}),
  tls: z
    .strictObject({
      certFile: opt(z.string().min(1).optional(), { doc: 'PEM certificate chain. With keyFile, Gatehouse serves HTTPS itself.' }),
      keyFile: opt(z.string().min(1).optional(), { doc: 'PEM private key for certFile.' }),
      minVersion: opt(z.enum(['TLSv1.3', 'TLSv1.2']).default('TLSv1.3'), {
        doc: 'Lowest TLS version accepted. TLS 1.2 is opt-in.',
      }),
      redirectHttpPort: opt(port.optional(), {
        doc: 'When serving HTTPS, also listen on this port with plain HTTP that only redirects to HTTPS.',
      }),
    })
    .prefault({}),
  cors: z
    .strictObject({
      origins: opt(z.array(httpUrlSchema()).default([]), {
        doc: 'Browser origins allowed to call the API cross-origin (exact match). Empty: no cross-origin access.',
      }),
    })
    .prefault({}),
  storage: z
    .strictObject({
      dataDir: opt(z.string().min(1).default('./.gatehouse'), {
        doc: 'Directory of the embedded database (PGlite) and local state. Used when no databaseUrl is set.',
      }),
      databaseUrl: opt(z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(), {
        doc: 'PostgreSQL URL of the owner role, used for migrations. Unset: embedded PGlite in dataDir.',
        secret: true,
        aliases: ['DATABASE_URL'],
      }),
      databaseAppUrl: opt(z.string().regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL').optional(), {
        doc: 'PostgreSQL URL of the application role (owns nothing, no BYPASSRLS). Unset: databaseUrl with the user gatehouse_app and databaseAppPassword.',
        secret: true,
      }),
      databaseAppPassword: opt(z.string().min(1).optional(), {
        doc: 'Password set on and used for the gatehouse_app role when databaseAppUrl is unset.',
        secret: true,
      }),
    })
    .prefault({}),
  kv: z
    .strictObject({
      redisUrl: opt(z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL').optional(), {
        doc: 'Redis URL for counters, rate limits and pub/sub shared by several nodes. Unset: in-memory (one node).',
        secret: true,
        aliases: ['REDIS_URL'],
      }),
      keyPrefix: opt(z.string().regex(/^[A-Za-z0-9:_-]{1,32}$/, 'letters, digits, ":", "_" or "-", at most 32').default('gh:'), {
        doc: 'Prefix of every Redis key and channel, so several deployments can share one Redis.',
      }),
    })
    .prefault({}),
  auth: z
    .strictObject({
      returnUrls: opt(z.array(httpUrlSchema()).default([]), {
        doc: 'Where a browser may land after a social or SSO sign-in started with `returnTo` (redirect mode), besides the console (paths under /console/): URLs of your app. A return URL is allowed when its origin equals an entry\'s and its path is under the entry\'s path; anything else is refused with 400 RETURN_URL_NOT_ALLOWED.',
      }),
      passwordMinLength: opt(z.number().int().min(8).max(64).default(15), {
        doc: 'Shortest password accepted, in Unicode code points (NIST SP 800-63B-4: 15 when the password is the only factor).',
      }),
      passwordMaxLength: opt(z.number().int().min(64).max(4096).default(1024), { doc: 'Longest password accepted, in code points (at least 64).' }),
      passwordMinStrength: opt(z.number().int().min(0).max(4).default(3), { doc: 'Lowest zxcvbn strength score (0-4) a new password must reach.' }),
      breachCheck: opt(z.enum(['off', 'fail-open', 'fail-closed']).default('off'), {
        doc: 'Online k-anonymity breach check of new passwords (only a 5-character hash prefix leaves). fail-open accepts the password when the service cannot answer; fail-closed refuses it.',
      }),
      breachRangeUrl: opt(httpUrlSchema().default('https://api.pwnedpasswords.com/range/'), { doc: 'Range API of the breach check.' }),
      argon2MemoryKiB: opt(z.number().int().min(19_456).max(4_194_304).default(19_456), { doc: 'Argon2id memory cost in KiB (OWASP minimum 19 MiB). Raising it rehashes passwords at their next sign-in.' }),
      argon2TimeCost: opt(z.number().int().min(2).max(100).default(2), { doc: 'Argon2id iterations (OWASP minimum 2).' }),
      argon2Parallelism: opt(z.number().int().min(1).max(16).default(1), { doc: 'Argon2id lanes.' }),
      accessTokenTtlSeconds: opt(z.number().int().min(60).max(3600).default(600), { doc: 'Lifetime of access tokens (EdDSA JWTs).' }),
      accessTokenClockSkewSeconds: opt(z.number().int().min(0).max(60).default(5), {
        doc: 'Clock difference tolerated between nodes when checking an access token\'s exp, nbf and iat: a token is refused (TOKEN_EXPIRED, as UNAUTHENTICATED) once it is older than its exp by more than this.',
      }),
      sessionIdleSeconds: opt(z.number().int().min(300).max(90 * 86_400).default(14 * 86_400), { doc: 'A session unused for this long ends (its refresh token stops working).' }),
      sessionAbsoluteSeconds: opt(z.number().int().min(3600).max(365 * 86_400).default(30 * 86_400), { doc: 'A session ends this long after sign-in, however active.' }),
      refreshReuseGraceSeconds: opt(z.number().int().min(0).max(60).default(10), {
        doc: 'A refresh token presented again within this window (two tabs racing) gets the same successor; after it, the whole session is revoked.',
      }),
      issuer: opt(z.string().min(1).optional(), { doc: 'iss of access tokens. Default: the public URL.' }),
      audience: opt(z.string().min(1).default('gatehouse'), { doc: 'aud of access tokens; your backend checks it.' }),
      emailTokenTtlSeconds: opt(z.number().int().min(300).max(7 * 86_400).default(3600), { doc: 'Lifetime of email verification and password reset links.' }),
      lockoutThreshold: opt(z.number().int().min(3).max(100).default(20), {
        doc: 'Consecutive failed sign-ins before an account is locked (NIST: at most 100). The owner is emailed.',
      }),
      lockoutSeconds: opt(z.number().int().min(60).max(86_400).default(900), { doc: 'How long a lockout lasts.' }),
      throttleFreeAttempts: opt(z.number().int().min(1).max(50).default(5), {
        doc: 'Failed sign-ins per account (and per client IP, times 4) before growing delays start: each further failure doubles the wait, from 1 s up to 15 min.',
      }),
      signupsPerIpPerHour: opt(z.number().int().min(1).max(10_000).default(5), {
        doc: 'Accounts one client IP may create per hour. A sign-up refused for bad input (a weak password, a malformed email) does not count here; it counts in `auth.refusedSignupsPerIpPerHour`.',
      }),
      refusedSignupsPerIpPerHour: opt(z.number().int().min(1).max(100_000).default(30), {
        doc: 'Sign-ups one client IP may have refused for bad input per hour, before its sign-ups answer 429 RATE_LIMITED.',
      }),
      newDeviceRequiresSecondFactor: opt(z.boolean().default(false), {
        doc: 'A device remembered by `auth.rememberSecondFactorDays` that signs in from a network (IPv4 /24, IPv6 /48) it has not used is asked for the second factor again. A new device is always asked. Accounts without a second factor have none to give: an org\'s `requireMfa` makes its members enrol.',
      }),
      rememberSecondFactorDays: opt(z.number().int().min(0).max(90).default(0), {
        doc: 'After a second factor is verified at sign-in on a device, later sign-ins of that user from that device skip the second step for this many days (0: asked at every sign-in). Such a session has no fresh second factor: sensitive actions still step up. A password reset forgets every remembered device.',
      }),
      mfaIssuer: opt(z.string().min(1).max(64).regex(/^[^:]+$/, 'no ":"').default('Gatehouse'), {
        doc: 'Issuer name authenticator apps show next to a TOTP entry (the `issuer` of the otpauth URI).',
      }),
    })
    .prefault({}),
  tenancy: z
    .strictObject({
      invitationTtlHours: opt(z.number().int().min(1).max(30 * 24).default(7 * 24), { doc: 'How long an invitation link stays valid.' }),
      maxOrgsPerUser: opt(z.number().int().min(1).max(10_000).default(20), { doc: 'Most organizations one user may create (owner of).' }),
      maxWorkspacesPerOrg: opt(z.number().int().min(1).max(10_000).default(100), { doc: 'Most workspaces in one organization.' }),
      maxPendingInvitations: opt(z.number().int().min(1).max(10_000).default(100), { doc: 'Most open invitations in one organization.' }),
      authorityCacheSeconds: opt(z.number().int().min(1).max(300).default(30), {
        doc: 'How long a node caches a membership (role) it read. Changes evict it on every node through kv pub/sub at once; this bounds staleness only if an eviction message is lost.',
      }),
    })
    .prefault({}),
  audit: z
    .strictObject({
      checkpointEvery: opt(z.number().int().min(1).max(1_000_000).default(100), { doc: 'Sign a checkpoint of a log after this many new events.' }),
      checkpointSeconds: opt(z.number().int().min(1).max(86_400).default(60), {
        doc: 'Sign a checkpoint when the last one is older than this and new events exist: at the next append, read, proof or export of that log.',
      }),
      retentionDays: opt(z.number().int().min(1).max(36_500).default(365), {
        doc: 'Events older than this are removed by `gatehouse audit prune`; checkpoints and tree hashes stay, so what remains still verifies.',
      }),
    })
    .prefault({}),
  mail: z
    .strictObject({
      smtpUrl: opt(z.string().regex(/^smtps?:\/\//, 'must be an smtp:// or smtps:// URL').optional(), {
        doc: 'SMTP server for outgoing mail (smtp://user:pass@host:587?requireTLS=true or smtps://...). Unset: mail goes to the outbox directory, read with `gatehouse outbox`.',
        secret: true,
        aliases: ['SMTP_URL'],
      }),
      from: opt(z.string().min(3).default('Gatehouse <no-reply@localhost>'), { doc: 'Sender of outgoing mail.' }),
      outboxDir: opt(z.string().min(1).optional(), { doc: 'Where mail goes without SMTP. Default: outbox/ in storage.dataDir.' }),
      maxAttempts: opt(z.number().int().min(1).max(50).default(10), {
        doc: 'Delivery attempts of a queued message before it is given up (status failed, counted by `gatehouse doctor`). An SMTP 5xx reply gives up at once.',
      }),
      retryBaseMs: opt(z.number().int().min(100).max(3_600_000).default(30_000), {
        doc: 'Wait before the first retry of a message that could not be sent; each further retry doubles it (with random jitter: between half and all of it), up to mail.retryMaxMs. With the defaults, a message is retried for 1.5 to 3 hours.',
      }),
      retryMaxMs: opt(z.number().int().min(100).max(86_400_000).default(3_600_000), { doc: 'Longest wait between two delivery attempts of a message.' }),
      pollMs: opt(z.number().int().min(100).max(600_000).default(5_000), {
        doc: 'How often each node looks for due messages (queued on another node, or retries). A message queued on this node is sent at once.',
      }),
      retentionDays: opt(z.number().int().min(1).max(365).default(7), { doc: 'Sent and given-up messages are deleted from the mail queue after this many days (a sent message keeps no content).' }),
    })
    .prefault({}),
  keyring: z
    .strictObject({
      masterKeys: opt(z.string().min(1).optional(), {
        doc: 'Key-encryption keys as a versioned list `1:<base64 32 bytes>,2:<...>`; the highest version is primary. Unset: a key file in the data directory (created on first start, mode 0600).',
        secret: true,
        aliases: ['GATEHOUSE_MASTER_KEYS'],
      }),
      keyFile: opt(z.string().min(1).optional(), {
        doc: 'Path of the local key file when masterKeys is unset. Default: master-keys.json in storage.dataDir. Start refuses when it is readable by group or others.',
      }),
      minDecryptKekVersion: opt(z.number().int().min(1).default(1), {
        doc: 'Sealed values recorded under a key-encryption key older than this version are refused (KEY_RETIRED). Raise it after `keys rotate dek` has re-encrypted everything.',
      }),
      dekMaxUses: opt(z.number().int().min(1000).max(2 ** 32).default(2 ** 31), {
        doc: 'Seals per data key before it is retired and replaced: random 96-bit nonces stay well under the NIST SP 800-38D bound of 2^32.',
      }),
      cacheTtlSeconds: opt(z.number().int().min(1).max(3600).default(300), {
        doc: 'How long an unwrapped data key stays in memory. Destruction and rotation also evict it on every node through kv pub/sub.',
      }),
      cacheMaxEntries: opt(z.number().int().min(1).max(100_000).default(1000), { doc: 'Most unwrapped data keys held in memory.' }),
      kms: kmsSection,
      pkcs11: pkcs11Section,
    })
    .superRefine((v, ctx) => {
      if (v.pkcs11.module !== undefined) {
        if (v.masterKeys !== undefined || v.keyFile !== undefined || v.kms.keys !== undefined) {
          ctx.addIssue({ code: 'custom', path: ['pkcs11', 'module'], message: 'KEKs come from one place: unset masterKeys, keyFile and kms.keys when keyring.pkcs11.module is set' });
        }
        for (const field of ['tokenLabel', 'pin'] as const) {
          if (v.pkcs11[field] === undefined) ctx.addIssue({ code: 'custom', path: ['pkcs11', field], message: 'required when keyring.pkcs11.module is set' });
        }
      }
      if (v.kms.keys === undefined) return;
      if (v.masterKeys !== undefined || v.keyFile !== undefined) ctx.addIssue({ code: 'custom', path: ['kms', 'keys'], message: 'KEKs come from one place: unset masterKeys and keyFile when keyring.kms.keys is set' });
      for (const field of ['endpoint', 'region', 'accessKeyId', 'secretAccessKey'] as const) {
        if (v.kms[field] === undefined) ctx.addIssue({ code: 'custom', path: ['kms', field], message: `required when keyring.kms.keys is set` });
      }
    })
    .prefault({}),
  rateLimit: z
    .strictObject({
      enabled: opt(z.boolean().default(true), { doc: 'Apply per-IP and per-principal rate limits to every route category.' }),
      onStoreError: opt(z.enum(['closed', 'open']).default('closed'), {
        doc: 'When the counter store (Redis) cannot answer a rate-limit or monthly-limit count: closed refuses the request with 503 + Retry-After, open lets it through uncounted and logs. It decides nothing else: sessions are then checked in the database; sign-in throttling, lockouts, MFA, passkey and SSO challenges need Redis and answer 503 in both modes; ops routes (/healthz, /readyz, /metrics) are never refused for it. README: "When PostgreSQL or Redis cannot answer".',
      }),
      categories: opt(
        z
          .strictObject(Object.fromEntries(RATE_CATEGORIES.map((c) => [c, categoryLimits.optional()])) as Record<
            RateCategory,
            z.ZodOptional<typeof categoryLimits>
          >)
          .default({}),
        {
          doc: `Per category, limits per client IP and per principal (user or API key), as JSON. Defaults: ${RATE_CATEGORIES.map(
            (c) => `${c} ${defaultLimits[c].ip.limit}/${defaultLimits[c].ip.windowSeconds}s per IP, ${defaultLimits[c].principal.limit}/${defaultLimits[c].principal.windowSeconds}s per principal`,
          ).join('; ')}.`,
        },
      ),
    })
    .prefault({}),
  gateway: gatewaySection,
  guard: z
    .strictObject({
      external: z
        .strictObject({
          url: opt(httpUrlSchema().optional(), {
            doc: 'Input guard: URL of an external prompt-injection classifier (e.g. Llama Prompt Guard behind a small HTTP service). POST {"text"} answered by {"score": 0..1} or [{"label","score"}]. Unset: only the built-in rules and classifier run.',
          }),
          timeoutMs: opt(z.number().int().min(10).max(10_000).default(500), { doc: 'Input guard: how long a call to the external classifier may take.' }),
          failMode: opt(z.enum(['closed', 'open']).default('closed'), {
            doc: 'Input guard: what an external classifier failure (timeout, error, unreadable answer) means. closed: counts as a detection, so the workspace policy flags or blocks; open: the built-in layers decide alone.',
          }),
          token: opt(z.string().min(1).max(4096).optional(), { doc: 'Input guard: bearer token sent to the external classifier.', secret: true }),
        })
        .prefault({}),
    })
    .prefault({}),
  mcp: mcpSection,
  tokens: tokensSection,
  backup: backupSection,
  budgets: budgetsSection,
  social: socialSection,
  sso: z
    .strictObject({
      clockSkewSeconds: opt(z.number().int().min(0).max(300).default(60), {
        doc: 'Enterprise SSO: clock difference tolerated with an identity provider when checking SAML NotBefore / NotOnOrAfter (and OIDC token times).',
      }),
      stateTtlSeconds: opt(z.number().int().min(60).max(900).default(600), {
        doc: 'Enterprise SSO: how long a started sign-in (OIDC state, SAML AuthnRequest id) may take at the identity provider.',
      }),
      allowInsecureRequests: opt(z.boolean().default(false), {
        doc: 'Enterprise SSO: let OIDC connections use plain-HTTP issuers. Only for a local test identity provider on loopback; never in production.',
      }),
    })
    .prefault({}),
  webauthn: z
    .strictObject({
      rpId: opt(z.string().min(1).max(253).regex(/^[a-z0-9.-]+$/, 'a lowercase host name, no scheme or port').optional(), {
        doc: 'WebAuthn relying party id of passkeys (a registrable domain of the origins). Default: the host of the public URL. Changing it makes every registered passkey unusable.',
      }),
      rpName: opt(z.string().min(1).max(64).default('Gatehouse'), { doc: 'Relying party name authenticators show when a passkey is created.' }),
      origins: opt(z.array(httpUrlSchema()).default([]), {
        doc: 'Page origins whose passkey ceremonies are accepted (exact match with clientDataJSON.origin). Empty: the origin of the public URL.',
      }),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: opt(z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), {
        doc: 'Log level of the JSON logs on standard output.',
      }),
    })
    .prefault({}),
  metrics: z
    .strictObject({
      token: opt(z.string().min(16, 'must be at least 16 characters').optional(), {
        doc: 'Bearer token that /metrics requires. Unset and not open: /metrics refuses every request.',
        secret: true,
      }),
      open: opt(z.boolean().default(false), { doc: 'Serve /metrics without a token (only behind a private network).' }),
    })
    .prefault({}),
  cron: z
    .strictObject({
      secret: opt(z.string().min(16, 'must be at least 16 characters').optional(), {
        doc: 'Bearer secret that scheduled-job endpoints require. Unset: those endpoints refuse every request.',
        secret: true,
      }),
      previousSecrets: opt(z.array(z.string().min(16, 'must be at least 16 characters')).max(5).default([]), {
        doc: 'Older cron secrets still accepted during a rotation (JSON array); remove each once every scheduler presents `cron.secret`.',
        secret: true,
      }),
    })
    .prefault({}),
  trust: z
    .strictObject({
      publicReport: opt(z.boolean().default(false), {
        doc: 'Publish a redacted trust report (each control\'s state, no evidence) at /.well-known/trust-report (JSON) and /.well-known/trust-report.html. Off: those paths answer 404. Operators always have GET /v1/admin/trust-report. Reloads without a restart.',
      }),
      publicCacheSeconds: opt(z.number().int().min(10).max(86_400).default(300), {
        doc: 'How long the public trust report is served from the last one generated before its live checks run again (each run is an audit event).',
      }),
      dependencyAuditFile: opt(z.string().min(1).optional(), {
        doc: 'The output of `npm audit --json` saved at the last dependency audit (e.g. by CI): the trust report shows its date (the file\'s modification time) and counts. Unset: the dependency audit is "not verified".',
      }),
    })
    .prefault({}),
  jobs: jobsSection,
  webhooks: webhooksSection,
  securityTxt: z
    .strictObject({
      contact: opt(z.array(z.string().regex(/^(mailto:|https:\/\/|tel:)/, 'must be a mailto:, https:// or tel: URI')).min(1).default(['mailto:security@example.com']), {
        doc: 'Contact URIs published in /.well-known/security.txt (RFC 9116). Set your own; doctor warns on the default.',
      }),
      expiresDays: opt(z.number().int().min(1).max(365).default(180), {
        doc: 'security.txt Expires is this many days after the server starts (RFC 9116 recommends under a year).',
      }),
      policyUrl: opt(httpUrlSchema().optional(), {
        doc: 'Disclosure policy URL in security.txt. Default: this server\'s /security-policy (SECURITY.md).',
      }),
      preferredLanguages: opt(z.string().default('en'), { doc: 'security.txt Preferred-Languages.' }),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** Effective per-category limits: configured values over the defaults. */
export function rateLimitsFor(config: Config, category: RateCategory): z.infer<typeof categoryLimits> {
  return config.rateLimit.categories[category] ?? defaultLimits[category];
}

/** The origin clients use: server.publicUrl, else the listener address. */
export function publicOriginOf(config: Config): string {
  const { publicUrl, host, port } = config.server;
  if (publicUrl) return new URL(publicUrl).origin;
  const scheme = config.tls.certFile ? 'https' : 'http';
  const h = host.includes(':') ? `[${host}]` : host;
  return `${scheme}://${h}:${port}`;
}
