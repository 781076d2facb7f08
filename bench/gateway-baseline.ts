/**
 * Gateway baseline: what a bare undici passthrough proxy costs, the floor the Gatehouse gateway is
 * compared against later (`npm run bench:gateway`, to be added).
 *
 *   node bench/gateway-baseline.ts
 *
 * `startBaselineProxy(upstream)` is the baseline: it receives a request, forwards method, path,
 * body (streamed) and the auth and content-type headers with undici to the upstream, and pipes the
 * answer back with its status and content type. Nothing else: no parsing, no auth, no metering.
 * It does abort the upstream request when the client leaves, as any proxy must.
 *
 * The main runs, in order, for BENCH_SECONDS (default 5) at BENCH_CONNECTIONS (default 32), each
 * after a 1 s warm-up that is discarded:
 *   (a) the mock upstream directly, JSON      (b) the baseline, JSON
 *   (c) the mock upstream directly, stream    (d) the baseline, stream
 * and prints req/s, p50 and p99 (autocannon's histogram: 1 ms resolution). JSON is a
 * `POST /v1/chat/completions`; the stream is the same call with `stream: true` (9 SSE events).
 * The mock upstream and the baseline run in one worker thread, autocannon on the main thread, so
 * load generation does not share an event loop with the servers. Exits non-zero when a request
 * failed or answered other than 2xx. Bounded: about 4 x (1 + BENCH_SECONDS) seconds.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pipeline } from 'node:stream/promises';
import { Worker, parentPort, workerData } from 'node:worker_threads';
import autocannon from 'autocannon';
import { Agent } from 'undici';
import { envSeconds } from './env.ts';
import { startMockVendor } from './mock-upstream.ts';

/** A fixed key for the mock: a bench needs no secret, but the mock does check the header. */
const BENCH_KEY = 'bench-upstream-key';
/** Marks the worker this file starts, so that importing the file elsewhere starts nothing. */
const WORKER_ROLE = 'gateway-baseline-servers';
const FORWARDED_HEADERS = ['content-type', 'authorization', 'x-api-key', 'anthropic-version', 'api-key', 'accept'];

export interface BaselineProxy {
  url: string;
  close(): Promise<void>;
}

/**
 * Starts the bare passthrough proxy on 127.0.0.1 and a free port, forwarding to `upstream`.
 * @example const baseline = await startBaselineProxy(vendor.url)
 */
export async function startBaselineProxy(upstream: string): Promise<BaselineProxy> {
  const origin = new URL(upstream).origin;
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: 256 });
  const server = createServer((req: IncomingMessage, res) => {
    const headers: Record<string, string> = {};
    for (const name of FORWARDED_HEADERS) {
      const value = req.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    const controller = new AbortController();
    res.on('close', () => {
      if (!res.writableFinished) controller.abort();
    });
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    agent
      .request({ origin, path: req.url ?? '/', method: req.method === 'GET' ? 'GET' : 'POST', headers, body: hasBody ? req : null, signal: controller.signal })
      .then(async ({ statusCode, headers: upstreamHeaders, body }) => {
        const contentType = upstreamHeaders['content-type'];
        res.writeHead(statusCode, typeof contentType === 'string' ? { 'content-type': contentType } : {});
        await pipeline(body, res);
      })
      .catch(() => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      server.closeAllConnections();
      server.close();
      await agent.close();
    },
  };
}

interface Urls {
  upstream: string;
  baseline: string;
}

interface Row {
  name: string;
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  failures: number;
}

const body = (stream: boolean): string =>
  JSON.stringify({ model: 'mock-model', messages: [{ role: 'user', content: 'Say hello.' }], ...(stream ? { stream: true } : {}) });

async function load(url: string, stream: boolean, seconds: number, connections: number): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `${url}/v1/chat/completions`,
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` },
        body: body(stream),
        connections,
        pipelining: 1,
        duration: seconds,
        timeout: 10,
      },
      (err, result) => (err ? reject(err instanceof Error ? err : new Error(String(err))) : resolve(result)),
    );
  });
}

async function main(): Promise<number> {
  const seconds = envSeconds('BENCH_SECONDS', 5);
  const raw = process.env.BENCH_CONNECTIONS;
  const connections = raw === undefined || raw === '' ? 32 : Number(raw);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1024) throw new Error('BENCH_CONNECTIONS must be an integer in [1, 1024]');

  const worker = new Worker(new URL(import.meta.url), { workerData: { role: WORKER_ROLE } });
  const [urls] = (await once(worker, 'message')) as [Urls];
  const rows: Row[] = [];
  const scenarios: [string, string, boolean][] = [
    ['upstream direct, JSON', urls.upstream, false],
    ['baseline proxy, JSON', urls.baseline, false],
    ['upstream direct, stream', urls.upstream, true],
    ['baseline proxy, stream', urls.baseline, true],
  ];
  try {
    for (const [name, url, stream] of scenarios) {
      await load(url, stream, 1, connections); // warm-up, discarded
      const r = await load(url, stream, seconds, connections);
      rows.push({ name, rps: r.requests.total / r.duration, p50: r.latency.p50, p99: r.latency.p99, requests: r.requests.total, failures: r.errors + r.timeouts + r.non2xx });
    }
  } finally {
    await worker.terminate();
  }
  process.stdout.write(`gateway baseline: ${connections} connections, ${seconds} s per run, node ${process.version}\n\n`);
  process.stdout.write('| run | req/s | p50 | p99 | requests | failures |\n|---|---:|---:|---:|---:|---:|\n');
  for (const row of rows) {
    process.stdout.write(`| ${row.name} | ${Math.round(row.rps).toLocaleString('en-US')} | ${row.p50} ms | ${row.p99} ms | ${row.requests} | ${row.failures} |\n`);
  }
  return rows.some((r) => r.failures > 0) ? 1 : 0;
}

if ((workerData as { role?: string } | null)?.role === WORKER_ROLE) {
  // The worker: the mock upstream and the baseline in front of it.
  const vendor = await startMockVendor({ openaiKey: BENCH_KEY });
  // The mock keeps every request for tests' assertions; a bench would grow it without bound.
  setInterval(() => vendor.reset(), 1_000).unref();
  const baseline = await startBaselineProxy(vendor.url);
  parentPort?.postMessage({ upstream: vendor.url, baseline: baseline.url } satisfies Urls);
} else if (import.meta.main) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
