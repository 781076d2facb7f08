/**
 * The controls the trust report has an entry for: every catalog ID of ../shared/PRODUCT.md that
 * docs/controls.md lists as implemented (a test keeps the two lists equal), and the
 * organisational promises no software can verify.
 */
export const IMPLEMENTED_CONTROLS: readonly { id: string; title: string }[] = [
  { id: 'EDGE-1', title: 'Native TLS, HTTP to HTTPS redirect, HSTS' },
  { id: 'EDGE-2', title: 'Security headers on every response' },
  { id: 'EDGE-3', title: 'CORS allowlist' },
  { id: 'EDGE-4', title: 'Schemas on every route, one error envelope' },
  { id: 'EDGE-5', title: 'Declared guards on every route' },
  { id: 'EDGE-6', title: 'Inbound webhooks: verified signatures, replay refused, relayed' },
  { id: 'EDGE-7', title: 'Scheduled jobs: one leader, cron secret' },
  { id: 'EDGE-8', title: 'security.txt and disclosure policy' },
  { id: 'OPS-1', title: 'Encrypted backups, verified restore, restore drill' },
  { id: 'OPS-2', title: 'Health, readiness, metrics' },
  { id: 'OPS-3', title: 'One configuration schema; secrets from the environment; reload without restart' },
  { id: 'OPS-4', title: 'Trust report from live checks' },
  { id: 'OPS-5', title: 'Supply chain: lockfile, no install scripts, dependency audit' },
  { id: 'ABUSE-1', title: 'Rate limits' },
  { id: 'ABUSE-2', title: 'Central budgets: reserve before, settle after, exact across nodes' },
  { id: 'ABUSE-3', title: 'Input guard: prompt injection, jailbreaks, obfuscation, exfiltration; strikes' },
  { id: 'ABUSE-4', title: 'Adversarial corpus with measured detection and false positives' },
  { id: 'DATA-4', title: 'Log hygiene' },
  { id: 'TEN-1', title: 'Orgs, workspaces, roles; current authority' },
  { id: 'TEN-2', title: 'Tenant isolation in the database (forced RLS, application role)' },
  { id: 'TEN-3', title: 'Isolation scan of every tenant table' },
  { id: 'DATA-1', title: 'Keyring: key-encryption keys, signing keys, rotation' },
  { id: 'DATA-2', title: 'Envelope encryption' },
  { id: 'DATA-3', title: 'Crypto-shredding per tenant and per user' },
  { id: 'AUDIT-1', title: 'Audit events' },
  { id: 'AUDIT-2', title: 'Tamper-evident audit logs (signed checkpoints)' },
  { id: 'AUDIT-3', title: 'Audit export and offline verifier' },
  { id: 'AUDIT-4', title: 'Audit retention' },
  { id: 'AUTH-1', title: 'Passwords' },
  { id: 'AUTH-2', title: 'Email verification, reset and change; mail delivery' },
  { id: 'AUTH-3', title: 'Sessions and access tokens' },
  { id: 'AUTH-4', title: 'Browser sessions and CSRF' },
  { id: 'AUTH-5', title: 'Brute-force protection' },
  { id: 'AUTH-6', title: 'Devices' },
  { id: 'AUTH-7', title: 'Multi-factor authentication' },
  { id: 'AUTH-8', title: 'Social sign-in' },
  { id: 'AUTH-9', title: 'Enterprise SSO' },
  { id: 'AUTH-10', title: 'Account lifecycle' },
  { id: 'GW-1', title: 'Gateway API keys and monthly limits' },
  { id: 'GW-2', title: 'Gateway providers, vendor credentials, upstream allowlist' },
  { id: 'GW-3', title: 'Timeouts, retries, circuit breakers, fallbacks' },
  { id: 'GW-4', title: 'Metering' },
  { id: 'GW-5', title: 'MCP gateway: authenticated endpoint, tool allowlists, checked arguments, inspected results' },
];

/** Promises of an operator's organisation: stated in their own section, never given a state. */
export const ORGANISATIONAL_PROMISES: readonly string[] = [
  'SOC 2 attestation',
  'Background checks of staff',
  'Penetration tests',
  'Bug bounty programme',
  'WAF and DDoS protection in front of the service',
];
