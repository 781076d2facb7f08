/**
 * Live checks of operations: the rate-limit store (ABUSE-1), the gateway's providers and breakers
 * (GW-2, GW-3), SMTP (AUTH-2), the dependency audit (OPS-5), the configuration and its reloads
 * (OPS-3) and log scrubbing (DATA-4).
 */
import { randomUUID } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import type { LiveConfig } from '../config/live.ts';
import { secretValues } from '../config/load.ts';
import type { Gateway } from '../gateway/index.ts';
import { REDACTED, sanitizeForLog } from '../server/logger.ts';
import { probeAddress } from './checks-edge.ts';
import type { TrustCheck } from './types.ts';

const rateLimitCheck: TrustCheck = {
  control: 'ABUSE-1',
  name: 'rate-limit-store',
  run: async (ctx) => {
    const { enabled, onStoreError } = ctx.config.rateLimit;
    const mode = `on a store failure: ${onStoreError === 'closed' ? 'closed (503 + Retry-After)' : 'open (requests pass uncounted, logged)'}`;
    if (!enabled) return { state: 'off', evidence: [mode], why: 'rateLimit.enabled is false' };
    // A real count in the store, on a key of its own: a window of 1 must refuse the second hit.
    const key = `rl:trust-check:${randomUUID()}`;
    const at = ctx.now();
    try {
      const first = await ctx.kv.hitSlidingWindow(key, 1, 1000, at);
      const second = await ctx.kv.hitSlidingWindow(key, 1, 1000, at);
      const evidence = [`${ctx.kv.kind} store counted two hits on a limit of 1: ${first.allowed ? 'allowed' : 'refused'}, then ${second.allowed ? 'allowed' : 'refused'}`, mode];
      if (!first.allowed || second.allowed) return { state: 'failed', evidence, why: 'the counter store does not count' };
      return { state: onStoreError === 'open' ? 'misconfigured' : 'active', evidence, ...(onStoreError === 'open' ? { why: 'a counter-store outage lets requests through uncounted (rateLimit.onStoreError=open)' } : {}) };
    } catch {
      return { state: 'failed', evidence: [`the ${ctx.kv.kind} counter store did not answer`, mode], why: 'the rate-limit store is unreachable' };
    }
  },
};

/** GW-2 and GW-3: the gateway's platform providers (names only) and each breaker's state now. */
export function gatewayChecks(gateway: Gateway): TrustCheck[] {
  return [
    {
      control: 'GW-2',
      name: 'providers-and-vendor-keys',
      run: async (ctx) => {
        const { providers, providerKeys, upstream } = ctx.config.gateway;
        const keyed = providers.filter((p) => (providerKeys ?? {})[p.id]);
        const evidence = [`${providers.length} platform providers, ${keyed.length} with a vendor key from the environment`, `upstream allowlist: ${upstream.allowedHosts.length} hosts`];
        if (providers.length === 0) return { state: 'off', evidence, why: 'no platform provider is configured (workspaces may still bring their own)' };
        return { state: 'active', evidence };
      },
    },
    {
      control: 'GW-1',
      name: 'api-keys-hashed-and-checked',
      run: async (ctx) => {
        const app = ctx.app;
        if (!app) return { state: 'not verified', evidence: [], why: 'the server is not built in this process' };
        // Catalog: the key table can hold nothing but a SHA-256 of each key's secret.
        const { rows } = await ctx.db.query<{ def: string }>("select pg_get_constraintdef(c.oid) as def from pg_constraint c join pg_class t on t.oid = c.conrelid where t.relname = 'api_keys' and c.contype = 'c'");
        const hashed = rows.some((r) => r.def.includes('secret_hash') && r.def.includes('[0-9a-f]{64}'));
        const { rows: cols } = await ctx.db.query<{ name: string }>("select column_name as name from information_schema.columns where table_name = 'api_keys' and column_name ~ '(^|_)(key|secret|plaintext)$'");
        const probe = (authorization?: string) =>
          app.inject({ method: 'POST', url: '/v1/chat/completions', remoteAddress: probeAddress(), headers: { 'user-agent': 'gatehouse-trust-report', ...(authorization ? { authorization } : {}) }, payload: { model: 'trust-check', messages: [] } });
        const [none, unknown] = [await probe(), await probe(`Bearer gatehouse_${'0'.repeat(54)}`)];
        const evidence = [
          `api_keys: only a SHA-256 of each secret (checked by a constraint): ${hashed ? 'yes' : 'no'}; ${cols.length === 0 ? 'no column for a plaintext key' : `columns ${cols.map((c) => c.name).join(', ')}`}`,
          `POST /v1/chat/completions without a key: ${none.statusCode}; with an unknown key: ${unknown.statusCode}`,
        ];
        if (!hashed || cols.length > 0) return { state: 'failed', evidence, why: 'the API key table could hold keys in plaintext' };
        if (none.statusCode !== 401 || unknown.statusCode !== 401) return { state: 'failed', evidence, why: 'an AI call without a valid API key was not refused 401' };
        return { state: 'active', evidence };
      },
    },
    {
      control: 'GW-3',
      name: 'breaker-states',
      run: async (ctx) => {
        const states = [...gateway.proxy.breakerStates()];
        const open = states.filter(([, s]) => s !== 'closed').map(([id, s]) => `${id} ${s}`);
        const totalMs = ctx.config.gateway.timeouts.totalMs;
        const ttlMs = ctx.config.budgets.reservationTtlSeconds * 1000;
        const evidence = [
          `${states.length} provider breakers${open.length > 0 ? `; not closed (failing providers kept out until their probe succeeds): ${open.join(', ')}` : ', all closed'}`,
          `longest gateway call ${totalMs} ms; budget reservations expire after ${ttlMs} ms`,
        ];
        // A reservation that expires while its call still runs is settled from the usage records
        // before the call ends: the call is then not counted against the budget while it runs.
        if (ttlMs <= totalMs) return { state: 'misconfigured', evidence, why: 'budgets.reservationTtlSeconds is not above gateway.timeouts.totalMs: a long call can outlive its budget reservation' };
        return { state: 'active', evidence };
      },
    },
  ];
}

/** Reads the first reply line of an SMTP server (its greeting) and says QUIT; the credentials are not tried. */
function smtpGreeting(url: URL, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'smtps:';
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const port = url.port ? Number(url.port) : secure ? 465 : 587;
    const socket: Socket = secure ? tlsConnect({ host, port, servername: host, timeout: timeoutMs }) : netConnect({ host, port, timeout: timeoutMs });
    let buffer = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      const line = buffer.split('\r\n')[0];
      if (line !== undefined && buffer.includes('\r\n')) {
        socket.end('QUIT\r\n');
        resolve(line.slice(0, 3));
      }
    });
    socket.on('timeout', () => {
      socket.destroy();
      reject(new Error('TIMEOUT'));
    });
    socket.on('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? 'ERROR')));
  });
}

const smtpCheck: TrustCheck = {
  control: 'AUTH-2',
  name: 'smtp-reachable',
  run: async (ctx) => {
    const smtpUrl = ctx.config.mail.smtpUrl;
    if (!smtpUrl) return { state: 'off', evidence: ['no SMTP server: mail goes to the outbox directory'], why: 'mail.smtpUrl is not set' };
    const url = new URL(smtpUrl);
    const where = `${url.protocol}//${url.host}`;
    try {
      const code = await smtpGreeting(url, 3000);
      const evidence = [`${where} greeted with ${code} (credentials are not tried by this check)`];
      if (code !== '220') return { state: 'failed', evidence, why: 'the SMTP server does not accept mail now' };
      return { state: 'active', evidence };
    } catch (err) {
      return { state: 'failed', evidence: [`${where} did not answer (${(err as Error).message})`], why: 'the SMTP server is unreachable; mail stays queued and is retried' };
    }
  },
};

const dependencyAuditCheck: TrustCheck = {
  control: 'OPS-5',
  name: 'dependency-audit',
  run: async (ctx) => {
    const file = ctx.config.trust.dependencyAuditFile;
    if (!file) return { state: 'not verified', evidence: ['lockfile and blocked install scripts are checked in CI, not by the running node'], why: 'no dependency audit result is configured (trust.dependencyAuditFile)' };
    const [st, text] = await Promise.all([stat(file), readFile(file, 'utf8')]);
    const audit = JSON.parse(text) as { metadata?: { vulnerabilities?: Record<string, number> } };
    const vulns = audit.metadata?.vulnerabilities;
    const days = Math.floor((ctx.now() - st.mtimeMs) / 86_400_000);
    if (!vulns) return { state: 'not verified', evidence: [`audit file of ${st.mtime.toISOString()} holds no result`], why: 'the last dependency audit could not reach the advisory database' };
    const evidence = [`last dependency audit ${st.mtime.toISOString()} (${days} days ago): ${Object.entries(vulns).map(([k, n]) => `${k} ${n}`).join(', ')}`];
    if ((vulns.high ?? 0) + (vulns.critical ?? 0) > 0) return { state: 'failed', evidence, why: 'the last dependency audit found high or critical advisories' };
    if (days > 30) return { state: 'misconfigured', evidence, why: 'the last dependency audit is older than 30 days' };
    return { state: 'active', evidence };
  },
};

/** OPS-3: where the configuration comes from and what the last reload did. */
export function configCheck(live: LiveConfig): TrustCheck {
  return {
    control: 'OPS-3',
    name: 'configuration-and-reload',
    run: async () => {
      const last = live.lastReload();
      const watched = live.watchedFiles().length;
      const evidence = [
        `configuration validated by one schema; ${secretValues(live.current()).length > 0 ? 'secrets only from the environment or _FILE files' : 'no secret configured'}`,
        `reload: SIGHUP, gatehouse reload${watched > 0 ? `, and changes to ${watched} watched files` : ''}`,
      ];
      if (!last) return { state: 'active', evidence: [...evidence, 'no reload since the start'] };
      evidence.push(`last reload ${last.at}: ${last.status}${last.changed.length > 0 ? ` (${last.changed.join(', ')})` : ''}${last.needsRestart.length > 0 ? `; needing a restart: ${last.needsRestart.join(', ')}` : ''}`);
      if (last.status === 'refused') return { state: 'misconfigured', evidence, why: `the last reload was refused (${last.reason ?? 'no reason'}); the node runs the configuration before it` };
      if (last.needsRestart.length > 0) return { state: 'misconfigured', evidence, why: 'options changed that apply only after a restart' };
      return { state: 'active', evidence };
    },
  };
}

const logHygieneCheck: TrustCheck = {
  control: 'DATA-4',
  name: 'log-scrubbing',
  run: async (ctx) => {
    const canary = `trust-canary-${randomUUID()}`;
    const known = secretValues(ctx.config);
    const out = JSON.stringify(sanitizeForLog({ password: canary, headers: { authorization: `Bearer ${canary}` }, note: known[0] ?? canary }, known.length > 0 ? known : [canary]));
    const leaked = out.includes(canary) || (known[0] !== undefined && out.includes(known[0]));
    const evidence = [`a canary under sensitive names and a configured secret in free text: ${leaked ? 'reached the log' : `replaced by ${REDACTED}`}`, `log level ${ctx.config.log.level}`];
    if (leaked) return { state: 'failed', evidence, why: 'the log scrubber let a secret through' };
    return { state: 'active', evidence };
  },
};

export const OPS_CHECKS: readonly TrustCheck[] = [rateLimitCheck, smtpCheck, dependencyAuditCheck, logHygieneCheck];
