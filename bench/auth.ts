/**
 * Auth benchmark (`npm run bench:auth`), one process, loopback only, bounded in time:
 *
 * (a) sign-ins/s through `POST /v1/auth/login` (throttle check, Argon2id verification, device
 *     record, session insert, token signing) against raw Argon2id verifications/s with the same
 *     parameters and the same concurrency. Argon2 dominates a sign-in by design; the ratio shows
 *     what the rest costs. Target >= 0.85.
 * (b) requests/s of an authenticated `GET /v1/me` (access-token verification + revocation check
 *     + the user lookup) against the same handler's lookup served publicly (no guard).
 *     Target >= 0.8.
 *
 * Runs alternate (raw, http, raw, http) so machine noise hits both sides. Targets are reported,
 * not enforced. BENCH_SECONDS (default 5) sets each measured run. With DATABASE_URL set, the node
 * runs on a scratch PostgreSQL database (dropped at the end) instead of in-memory PGlite.
 */
import { randomBytes } from 'node:crypto';
import { Writable } from 'node:stream';
import { verify } from '@node-rs/argon2';
import autocannon from 'autocannon';
import { z } from 'zod';
import { startNode } from '../src/cli/runtime.ts';
import { loadConfig } from '../src/config/load.ts';
import type { MailMessage } from '../src/identity/mailer.ts';
import { hashPassword, DEFAULT_ARGON2 } from '../src/identity/passwords.ts';
import { createLogger } from '../src/server/logger.ts';
import { defineRoute, type Feature } from '../src/server/route.ts';
import { createScratchPostgresDatabase } from '../test/support/pg-scratch.ts';
import { runWithStartFlags } from './env.ts';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const PASSWORD = 'benchmark passphrase for gatehouse 2026';

let benchUserId = '';
// Bound once the node exists: the public route runs exactly the /v1/me handler's lookup.
let lookupMe: ((id: string) => Promise<{ id: string; email: string; emailVerified: boolean; isOperator: boolean; createdAt: string; mfa: { totp: boolean; passkeys: number; recoveryCodesLeft: number } }>) | undefined =
  undefined;
const publicMe: Feature = {
  id: 'bench',
  routes: [
    defineRoute({
      method: 'GET',
      url: '/bench/me-public',
      summary: 'The /v1/me handler without a guard',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: {
        response: {
          200: z.object({
            id: z.string(),
            email: z.string(),
            emailVerified: z.boolean(),
            isOperator: z.boolean(),
            createdAt: z.string(),
            mfa: z.object({ totp: z.boolean(), passkeys: z.number(), recoveryCodesLeft: z.number() }),
          }),
        },
      },
      handler: async () => {
        if (!lookupMe) throw new Error('bench not ready');
        return lookupMe(benchUserId);
      },
    }),
  ],
};

async function rawArgon2(phc: string, seconds: number): Promise<number> {
  let done = 0;
  const end = performance.now() + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      if (!(await verify(phc, PASSWORD))) throw new Error('raw verify failed');
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  return done / ((performance.now() - t0) / 1000);
}

async function cannon(opts: autocannon.Options): Promise<number> {
  const result = await autocannon({ ...opts, duration: SECONDS });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${opts.url}: ${bad} failed requests (${result.non2xx} non-2xx, ${result.errors} errors)`);
  return result.requests.average;
}

// Measured as `npm start` runs a node: with its Node flags (see runWithStartFlags in env.ts).
await runWithStartFlags();

const mail: MailMessage[] = [];
const scratch = process.env.DATABASE_URL ? await createScratchPostgresDatabase(process.env.DATABASE_URL) : undefined;
const { config } = loadConfig({
  env: { GATEHOUSE_MASTER_KEYS: `1:${randomBytes(32).toString('base64')}`, ...(scratch ? { DATABASE_URL: scratch.url } : {}) },
  cwd: '/nonexistent',
  overrides: { 'rateLimit.enabled': false, 'log.level': 'info', 'auth.throttleFreeAttempts': 50 },
});
const logger = createLogger({ level: 'info', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const node = await startNode({
  config,
  logger,
  inMemory: !scratch,
  extraFeatures: [publicMe],
  mailer: { transport: 'outbox', send: async (m) => void mail.push(m), close: async () => undefined },
});
lookupMe = (id) => node.identity.accounts.meWithMfa(id);
const url = await node.app.listen({ host: '127.0.0.1', port: 0 });
const email = 'bench@example.com';
await node.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email, password: PASSWORD } });
// The verification mail is queued and sent by a background worker: wait for it (bounded).
for (let waited = 0; mail.length === 0 && waited < 60_000; waited += 100) await new Promise((r) => setTimeout(r, 100));
const code = /ghv_[A-Za-z0-9_-]{43}/.exec(mail[0]?.text ?? '')?.[0];
await node.app.inject({ method: 'POST', url: '/v1/auth/verify-email', payload: { token: code } });
const first = await node.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email, password: PASSWORD } });
const login = first.json() as { accessToken: string };
// Sign-ins repeat from one device, as a browser resends its device cookie.
const deviceCookie = first.cookies.find((c) => c.name === '__Host-gh_device')?.value ?? '';
benchUserId = ((await node.app.inject({ url: '/v1/me', headers: { authorization: `Bearer ${login.accessToken}` } })).json() as { id: string }).id;
const phc = await hashPassword(PASSWORD, DEFAULT_ARGON2);

const loginOpts: autocannon.Options = {
  url: `${url}/v1/auth/login`,
  method: 'POST',
  connections: CONCURRENCY,
  headers: { 'content-type': 'application/json', cookie: `__Host-gh_device=${deviceCookie}` },
  body: JSON.stringify({ email, password: PASSWORD }),
};
const raw: number[] = [];
const http: number[] = [];
// The process's CPU time (all threads: Argon2's pool, the server, the load generator) per operation.
const rawCpuMs: number[] = [];
const httpCpuMs: number[] = [];
const cpuMsPerOp = async (run: () => Promise<number>, rates: number[], cpu: number[]): Promise<void> => {
  const before = process.cpuUsage();
  const started = performance.now();
  const rate = await run();
  const used = process.cpuUsage(before);
  rates.push(rate);
  cpu.push((used.user + used.system) / 1000 / (rate * ((performance.now() - started) / 1000)));
};
await rawArgon2(phc, 1);
for (let i = 0; i < 2; i++) {
  await cpuMsPerOp(() => rawArgon2(phc, SECONDS), raw, rawCpuMs);
  await cpuMsPerOp(() => cannon(loginOpts), http, httpCpuMs);
}
const meAuth: number[] = [];
const mePublic: number[] = [];
const meOpts = { connections: 10, headers: { authorization: `Bearer ${login.accessToken}` } };
await cannon({ url: `${url}/bench/me-public`, connections: 10, duration: 1 });
for (let i = 0; i < 2; i++) {
  mePublic.push(await cannon({ url: `${url}/bench/me-public`, connections: 10 }));
  meAuth.push(await cannon({ url: `${url}/v1/me`, ...meOpts }));
}
await node.close();
await scratch?.drop();

const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
const a = mean(http) / mean(raw);
const b = mean(meAuth) / mean(mePublic);
process.stdout.write(
  [
    `storage: ${scratch ? 'PostgreSQL (scratch database)' : 'in-memory PGlite'}`,
    `(a) raw Argon2id verify (m=${DEFAULT_ARGON2.memoryKiB},t=${DEFAULT_ARGON2.timeCost},p=${DEFAULT_ARGON2.parallelism}, ${CONCURRENCY} at once): ${mean(raw).toFixed(1)}/s`,
    `    POST /v1/auth/login (${CONCURRENCY} connections):                       ${mean(http).toFixed(1)}/s`,
    `    ratio ${a.toFixed(2)} (target >= 0.85: ${a >= 0.85 ? 'met' : 'NOT met'})`,
    `    CPU per operation (the whole process): raw ${mean(rawCpuMs).toFixed(1)} ms, sign-in ${mean(httpCpuMs).toFixed(1)} ms; everything but Argon2 ${(mean(httpCpuMs) - mean(rawCpuMs)).toFixed(1)} ms per sign-in${scratch ? ' (plus PostgreSQL\'s own CPU, in its processes)' : ''}`,
    `(b) GET /bench/me-public (same handler, no guard): ${mean(mePublic).toFixed(0)} req/s`,
    `    GET /v1/me (token + revocation check):        ${mean(meAuth).toFixed(0)} req/s`,
    `    ratio ${b.toFixed(2)} (target >= 0.8: ${b >= 0.8 ? 'met' : 'NOT met'})`,
    '',
  ].join('\n'),
);
