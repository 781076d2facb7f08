/**
 * Webhooks benchmark (EDGE-6): verified inbound events per second, and relay throughput.
 *
 *   npm run bench:webhooks
 *
 * One process, loopback only, bounded by counts (BENCH_EVENTS, default 2000; BENCH_RELAY_EVENTS,
 * default 1000; BENCH_CONCURRENCY, default 10). A Gatehouse node from `startNode` (in-memory
 * PGlite, or PostgreSQL when DATABASE_URL is set) with a platform-level Standard Webhooks endpoint.
 *
 * - ingest: N signed events through `app.inject` to `POST /v1/hooks/platform/bench` (guard, raw
 *   body, HMAC check, endpoint and secrets read, sealed payload, replay row and queue row in one
 *   transaction), against a baseline of N `GET /healthz` through the same app in the same run;
 *   plus the verification alone (`verifyWebhook`, no I/O) per second.
 * - relay: M stored events delivered to a loopback destination by `relay.drain()` (claims, opens the
 *   payload and the destination secret, signs with Standard Webhooks, POSTs, records the attempt),
 *   against a baseline of M signed POSTs straight to the same destination with undici at the same
 *   concurrency.
 * BENCH_ENDPOINT_CACHE_SECONDS (default: the configuration's 30) sets webhooks.endpointCacheSeconds;
 * 0 turns the ingest path's endpoint cache off (the figure before it existed).
 * Exits non-zero when any event was not accepted or not delivered.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { Webhook } from 'standardwebhooks';
import { request } from 'undici';
import { startNode } from '../src/cli/runtime.ts';
import { loadConfig } from '../src/config/load.ts';
import { PLATFORM_TENANT_ID } from '../src/keyring/keyring.ts';
import { createLogger } from '../src/server/logger.ts';
import { WEBHOOKS } from '../src/webhooks/index.ts';
import { verifyWebhook } from '../src/webhooks/providers.ts';
import { runWithStartFlags } from './env.ts';

await runWithStartFlags();

const envInt = (name: string, fallback: number): number => {
  const n = Number(process.env[name]);
  return Number.isInteger(n) && n > 0 ? n : fallback;
};
const EVENTS = envInt('BENCH_EVENTS', 2000);
const RELAY_EVENTS = envInt('BENCH_RELAY_EVENTS', 1000);
const CONCURRENCY = envInt('BENCH_CONCURRENCY', 10);

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<number> {
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < items.length) await fn(items[next++] as T);
    }),
  );
  return performance.now() - started;
}

let up = false;
let received = 0;
const destination = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    if (!up) return void res.writeHead(503).end();
    received += 1;
    res.writeHead(204).end();
  });
});
await new Promise<void>((resolve) => destination.listen(0, '127.0.0.1', resolve));
const destUrl = `http://127.0.0.1:${(destination.address() as AddressInfo).port}/hooks`;

let clock = Date.now();
const { config } = loadConfig({
  env: process.env.DATABASE_URL ? { DATABASE_URL: process.env.DATABASE_URL } : {},
  cwd: '/nonexistent-gatehouse-bench',
  overrides: {
    'keyring.masterKeys': `1:${randomBytes(32).toString('base64')}`,
    'rateLimit.enabled': false,
    'jobs.enabled': false,
    'log.level': 'warn',
    'webhooks.relay.allowedHosts': ['127.0.0.1:*'],
    'webhooks.relay.allowedCidrs': ['127.0.0.1/32'],
    'webhooks.relay.allowInsecureHttp': true,
    'webhooks.relay.batchSize': 200,
    // BENCH_ENDPOINT_CACHE_SECONDS=0: every delivery reads and opens the endpoint (no ingest cache), for a before/after figure.
    ...(process.env.BENCH_ENDPOINT_CACHE_SECONDS !== undefined ? { 'webhooks.endpointCacheSeconds': Number(process.env.BENCH_ENDPOINT_CACHE_SECONDS) } : {}),
    'webhooks.relay.concurrency': CONCURRENCY,
    'webhooks.relay.retryBaseMs': 1000,
  },
});
const logger = createLogger({ level: 'warn', destination: new Writable({ write: (_c, _e, cb) => cb() }) });
const node = await startNode({ config, logger, inMemory: !process.env.DATABASE_URL, now: () => clock });
let failed = false;
try {
  const hooks = node.use(WEBHOOKS);
  const secret = `whsec_${randomBytes(32).toString('base64')}`;
  await hooks.endpoints.create(PLATFORM_TENANT_ID, { name: 'bench', provider: 'standard', destinationUrl: null, verifyToken: null });
  await hooks.endpoints.addSecret(PLATFORM_TENANT_ID, 'bench', { secret, expiresAt: null });
  await hooks.endpoints.create(PLATFORM_TENANT_ID, { name: 'relay', provider: 'standard', destinationUrl: destUrl, verifyToken: null });
  await hooks.endpoints.addSecret(PLATFORM_TENANT_ID, 'relay', { secret, expiresAt: null });
  const signer = new Webhook(secret);
  const payload = (i: number): string => JSON.stringify({ type: 'invoice.paid', data: { n: i, pad: 'x'.repeat(400) } });
  const signed = (endpoint: string, i: number) => {
    const id = `msg_${randomUUID()}`;
    const body = payload(i);
    const at = new Date(clock);
    return { endpoint, body, headers: { 'content-type': 'application/json', 'webhook-id': id, 'webhook-timestamp': String(Math.floor(at.getTime() / 1000)), 'webhook-signature': signer.sign(id, at, body) } };
  };
  const inject = async (e: ReturnType<typeof signed>): Promise<void> => {
    const res = await node.app.inject({ method: 'POST', url: `/v1/hooks/platform/${e.endpoint}`, payload: e.body, headers: e.headers });
    if (res.statusCode !== 200) {
      failed = true;
      console.error(`event refused: ${res.statusCode} ${res.body}`);
    }
  };

  // Warm-up (discarded), then the measured runs.
  await pool(Array.from({ length: 100 }, (_, i) => signed('bench', i)), CONCURRENCY, inject);
  const healthz = Array.from({ length: EVENTS }, (_, i) => i);
  const baselineMs = await pool(healthz, CONCURRENCY, async () => void (await node.app.inject({ url: '/healthz' })));
  const events = Array.from({ length: EVENTS }, (_, i) => signed('bench', i));
  const ingestMs = await pool(events, CONCURRENCY, inject);
  const verifyInputs = events.slice(0, 500).map((e) => ({ raw: Buffer.from(e.body), headers: e.headers, query: {}, body: JSON.parse(e.body) as unknown, secrets: [secret], nowMs: clock, toleranceSeconds: 300 }));
  const verifyStart = performance.now();
  const VERIFY_ROUNDS = 20;
  for (let r = 0; r < VERIFY_ROUNDS; r++) for (const input of verifyInputs) verifyWebhook('standard', input);
  const verifyMs = performance.now() - verifyStart;

  // Relay: events stored while the destination is down (their first attempt fails), then delivered.
  up = false;
  await pool(Array.from({ length: RELAY_EVENTS }, (_, i) => signed('relay', i)), CONCURRENCY, inject);
  await hooks.relay.drain(1000);
  up = true;
  received = 0;
  clock += 60_000;
  const relayStart = performance.now();
  await hooks.relay.drain(1000);
  const relayMs = performance.now() - relayStart;
  if (received !== RELAY_EVENTS) {
    failed = true;
    console.error(`relay delivered ${received} of ${RELAY_EVENTS}`);
  }
  received = 0;
  const directs = Array.from({ length: RELAY_EVENTS }, (_, i) => signed('relay', i));
  const directMs = await pool(directs, CONCURRENCY, async (e) => {
    const res = await request(destUrl, { method: 'POST', body: e.body, headers: e.headers });
    await res.body.dump();
  });

  const rate = (n: number, ms: number): number => Math.round((n / ms) * 1000);
  const ingestRate = rate(EVENTS, ingestMs);
  const baseRate = rate(EVENTS, baselineMs);
  const relayRate = rate(RELAY_EVENTS, relayMs);
  const directRate = rate(RELAY_EVENTS, directMs);
  console.log(`storage: ${node.db.kind}; ${EVENTS} ingest events, ${RELAY_EVENTS} relay events, concurrency ${CONCURRENCY}`);
  console.log(`ingest (verified + stored): ${ingestRate} events/s; baseline GET /healthz: ${baseRate} req/s; ratio ${(ingestRate / baseRate).toFixed(2)}`);
  console.log(`verification alone (Standard Webhooks HMAC, no I/O): ${rate(verifyInputs.length * VERIFY_ROUNDS, verifyMs)} checks/s`);
  console.log(`relay (claim, open, sign, POST, record): ${relayRate} events/s; baseline direct signed POSTs: ${directRate} req/s; ratio ${(relayRate / directRate).toFixed(2)}`);
} finally {
  await node.close();
  destination.close();
}
process.exit(failed ? 1 : 0);
