/**
 * A mock AI vendor for tests and benchmarks: a real HTTP server on 127.0.0.1 and a free port that
 * answers like the OpenAI, Azure OpenAI and Anthropic APIs.
 *
 * Routes
 * - `POST /v1/chat/completions` (OpenAI; `authorization: Bearer <openaiKey>`): JSON, or SSE when
 *   `stream: true` (chunks, then a usage chunk with `choices: []` when
 *   `stream_options.include_usage` is true, then `data: [DONE]`).
 * - `POST /v1/embeddings` (OpenAI): one 8-dimension vector per input.
 * - `GET /v1/models` (OpenAI, Bearer): `{ object: 'list', data }` with the ids of `models`; with
 *   `x-api-key` (Anthropic, `anthropic-version` required): Anthropic's page of `anthropicModels`
 *   (`limit`, `after_id`, `has_more`, `last_id`). `modelsFault` breaks both: `down` (503), `hang`
 *   (no answer until the client leaves), `not-json` (200 with an HTML page), `not-a-list` (200 JSON
 *   without `data`).
 * - `POST /openai/deployments/<deployment>/chat/completions?api-version=…` and `…/embeddings`
 *   (Azure OpenAI; `api-key: <azureKey>`; `api-version` required): as above, model = deployment.
 * - `POST /v1/messages` (Anthropic; `x-api-key: <anthropicKey>` and `anthropic-version` required):
 *   JSON, or SSE with message_start, content_block_start, ping, content_block_delta…,
 *   content_block_stop, message_delta (usage), message_stop.
 * A wrong or missing key gets 401 in the vendor's error shape.
 *
 * Normal answers: the text "Hello from the mock vendor." in `MOCK_COMPLETION_TOKENS` (6) pieces,
 * with usage `MOCK_PROMPT_TOKENS` (17) input and 6 output tokens.
 *
 * Fault modes, chosen per request by the model name (or Azure deployment name):
 * - `mock-slow`: JSON after `slowMs`; streams wait `slowChunkMs` before each event.
 * - `mock-slow-first-event`: streams send their headers at once, then wait `slowMs` before the
 *   first event (a provider that accepts the call and takes its time to start generating).
 * - `mock-<status>` (e.g. `mock-500`, `mock-503`, `mock-429`, `mock-400`): that status with a
 *   vendor-shaped error body; 429 and 503 carry `retry-after: 0`.
 * - `mock-flaky`: the first `flakyFailures` requests for that model answer 503, later ones succeed
 *   (counted per server; `reset()` clears the count).
 * - `mock-break-midstream`: streams send 3 events and then destroy the socket; JSON sends headers
 *   and half the body and then destroys the socket.
 * - `mock-break-midevent`: streams send 3 events and half of the fourth, then destroy the socket.
 * - `mock-hang-midstream`: streams send 3 events and then nothing until the client goes away.
 * - `mock-no-usage`: no usage anywhere (JSON, OpenAI usage chunk, Anthropic usage fields).
 * - `mock-echo-key`: 400 whose error message repeats the caller's key whole and a 10-character
 *   piece of it, like vendors that echo "Incorrect API key provided: …" (to test scrubbing).
 * - `mock-echo-key-encoded`: 400 whose message, `code`, `param` and extra fields hold the caller's key
 *   as base64, base64url, hex, reversed, spaced out and URL-encoded (`encodedKeyForms`).
 * - `mock-hang-first-byte`: never answers; the request counts as aborted when the client leaves.
 * - `mock-large`: streams `max_tokens` events of about 1 KiB each (JSON: `max_tokens` KiB of text),
 *   writing with backpressure; `streamedBytes` counts what was written.
 *
 * Observability for assertions: `requests` (every request, body parsed), `openConnections`,
 * `totalConnections`, `abortedRequests` (responses whose client went away before the end; sockets
 * the mock destroys on purpose do not count) and `streamedBytes`.
 */
import { once } from 'node:events';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constantTimeEqual } from '../../src/crypto/compare.ts';

export const MOCK_PROMPT_TOKENS = 17;
export const MOCK_COMPLETION_TOKENS = 6;
export const MOCK_TEXT_PIECES = ['Hello', ' from', ' the', ' mock', ' vendor', '.'] as const;
export const MOCK_TEXT = MOCK_TEXT_PIECES.join('');

export interface MockVendorOptions {
  openaiKey?: string;
  anthropicKey?: string;
  azureKey?: string;
  /** Delay of a `mock-slow` JSON answer. Default 300 ms. */
  slowMs?: number;
  /** Delay before each event of a `mock-slow` stream. Default 50 ms. */
  slowChunkMs?: number;
  /** How many `mock-flaky` requests fail before they succeed. Default 2. */
  flakyFailures?: number;
  /** The ids `GET /v1/models` lists to OpenAI clients. Default `['mock-model', 'mock-embed']`. */
  models?: readonly string[];
  /** The ids `GET /v1/models` lists to Anthropic clients. Default `['claude-mock-1', 'claude-mock-2']`. */
  anthropicModels?: readonly string[];
}

/** How `GET /v1/models` misbehaves, when it does. */
export type ModelsFault = 'none' | 'down' | 'hang' | 'not-json' | 'not-a-list';

export interface RecordedRequest {
  method: string;
  /** Path and query as received. */
  url: string;
  headers: IncomingHttpHeaders;
  /** The parsed JSON body, or undefined when there was none or it was not JSON. */
  body: unknown;
  rawBody: string;
  /** The answer the mock wrote so far, up to 1 MiB (for byte-for-byte comparisons). */
  response: string;
}

export interface MockVendor {
  /** Base URL, e.g. `http://127.0.0.1:41234`. */
  url: string;
  port: number;
  requests: RecordedRequest[];
  readonly openConnections: number;
  readonly totalConnections: number;
  readonly abortedRequests: number;
  readonly streamedBytes: number;
  /** How `GET /v1/models` answers from now on. Default `none`; `reset()` does not change it. */
  modelsFault: ModelsFault;
  /** Forgets recorded requests, counters and flaky counts. */
  reset(): void;
  /** Resolves when `predicate` holds, polling; rejects after `timeoutMs` (default 3000). */
  waitFor(predicate: () => boolean, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

type Dialect = 'openai' | 'azure' | 'anthropic';

/** The record of the request a response answers, so writes can be recorded. */
const recordOf = new WeakMap<ServerResponse, RecordedRequest>();

function noteWritten(res: ServerResponse, chunk: string): void {
  const record = recordOf.get(res);
  // Capped: a `mock-large` answer is not worth keeping whole.
  if (record && record.response.length < 1024 * 1024) record.response += chunk;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Writes with backpressure; false when the client went away. */
function write(res: ServerResponse, chunk: string): Promise<boolean> {
  if (res.destroyed || res.writableEnded) return Promise.resolve(false);
  noteWritten(res, chunk);
  if (res.write(chunk)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (ok: boolean): void => {
      res.off('drain', onDrain);
      res.off('close', onClose);
      resolve(ok);
    };
    const onDrain = (): void => done(true);
    const onClose = (): void => done(false);
    res.once('drain', onDrain);
    res.once('close', onClose);
  });
}

/** Waits `ms`, or less when the client goes away (resolves false then). */
function pause(res: ServerResponse, ms: number): Promise<boolean> {
  if (res.destroyed) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onClose = (): void => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      res.off('close', onClose);
      resolve(!res.destroyed);
    }, ms);
    res.once('close', onClose);
  });
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(text)), ...headers });
  noteWritten(res, text);
  res.end(text);
}

function errorBody(dialect: Dialect, status: number, message: string): unknown {
  if (dialect === 'anthropic') {
    const type = status === 401 ? 'authentication_error' : status === 429 ? 'rate_limit_error' : status >= 500 ? 'api_error' : 'invalid_request_error';
    return { type: 'error', error: { type, message } };
  }
  const type = status === 429 ? 'requests' : status >= 500 ? 'server_error' : 'invalid_request_error';
  return { error: { message, type, param: null, code: status === 401 ? 'invalid_api_key' : null } };
}

/** The caller's key in the forms a careless vendor might echo it, each labelled. */
export function encodedKeyForms(key: string): { base64: string; base64url: string; hex: string; reversed: string; spaced: string; urlEncoded: string } {
  const bytes = Buffer.from(key, 'utf8');
  return {
    base64: bytes.toString('base64'),
    base64url: bytes.toString('base64url'),
    hex: bytes.toString('hex'),
    reversed: [...key].reverse().join(''),
    spaced: [...key].join(' '),
    urlEncoded: [...bytes].map((b) => `%${b.toString(16).padStart(2, '0').toUpperCase()}`).join(''),
  };
}

/** A 400 that carries the key encoded in its message and in other fields, and a nested copy. */
function encodedKeyEchoBody(dialect: Dialect, key: string): unknown {
  const forms = encodedKeyForms(key);
  const message = `Invalid credential. ${Object.entries(forms)
    .map(([name, value]) => `${name}=${value}`)
    .join(' ; ')}`;
  const base = errorBody(dialect, 400, message) as { error: Record<string, unknown> };
  return { ...base, error: { ...base.error, code: forms.hex.slice(0, 60), param: forms.base64url.slice(0, 60), debug: { key: forms.reversed } }, echo: forms.base64 };
}

/**
 * Starts a mock vendor on 127.0.0.1 and a free port.
 * @example const vendor = await startMockVendor({ openaiKey: 'k1', anthropicKey: 'k2' }); … await vendor.close()
 */
export async function startMockVendor(options: MockVendorOptions = {}): Promise<MockVendor> {
  const slowMs = options.slowMs ?? 300;
  const slowChunkMs = options.slowChunkMs ?? 50;
  const flakyFailures = options.flakyFailures ?? 2;
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const flakyCounts = new Map<string, number>();
  let totalConnections = 0;
  let abortedRequests = 0;
  let streamedBytes = 0;
  let sequence = 0;
  let modelsFault: ModelsFault = 'none';
  const openaiModels = options.models ?? ['mock-model', 'mock-embed'];
  const anthropicModels = options.anthropicModels ?? ['claude-mock-1', 'claude-mock-2'];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks).toString('utf8');
      let body: unknown;
      try {
        body = rawBody === '' ? undefined : (JSON.parse(rawBody) as unknown);
      } catch {
        body = undefined;
      }
      const record: RecordedRequest = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, rawBody, response: '' };
      requests.push(record);
      recordOf.set(res, record);
      let destroyedOnPurpose = false;
      res.on('close', () => {
        if (!res.writableFinished && !destroyedOnPurpose) abortedRequests++;
      });
      const breakSocket = (): void => {
        destroyedOnPurpose = true;
        res.socket?.destroy();
      };
      handle(req, res, body, breakSocket).catch(() => {
        if (!res.headersSent) sendJson(res, 500, { error: { message: 'mock failure', type: 'server_error', param: null, code: null } });
        else res.destroy();
      });
    });
  });
  server.on('connection', (socket: Socket) => {
    totalConnections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });

  async function handle(req: IncomingMessage, res: ServerResponse, body: unknown, breakSocket: () => void): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://mock');
    const path = url.pathname;
    const azure = /^\/openai\/deployments\/([^/]+)\/(chat\/completions|embeddings)$/.exec(path);
    let dialect: Dialect;
    let operation: string;
    if (azure) {
      dialect = 'azure';
      operation = azure[2] ?? '';
    } else if (path === '/v1/messages' || (path === '/v1/models' && req.headers['x-api-key'] !== undefined)) {
      dialect = 'anthropic';
      operation = path === '/v1/models' ? 'models' : 'messages';
    } else if (path === '/v1/chat/completions' || path === '/v1/embeddings' || path === '/v1/models') {
      dialect = 'openai';
      operation = path.slice('/v1/'.length);
    } else {
      sendJson(res, 404, errorBody('openai', 404, `no route ${path}`));
      return;
    }

    // Authentication, in each vendor's way.
    const presented =
      dialect === 'anthropic' ? req.headers['x-api-key'] : dialect === 'azure' ? req.headers['api-key'] : /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    const expected = dialect === 'anthropic' ? options.anthropicKey : dialect === 'azure' ? options.azureKey : options.openaiKey;
    if (expected !== undefined && !(typeof presented === 'string' && constantTimeEqual(presented, expected))) {
      sendJson(res, 401, errorBody(dialect, 401, dialect === 'anthropic' ? 'invalid x-api-key' : 'Incorrect API key provided.'));
      return;
    }
    if (dialect === 'anthropic' && typeof req.headers['anthropic-version'] !== 'string') {
      sendJson(res, 400, errorBody(dialect, 400, 'anthropic-version header is required'));
      return;
    }
    if (dialect === 'azure' && !url.searchParams.get('api-version')) {
      sendJson(res, 400, errorBody(dialect, 400, 'api-version query parameter is required'));
      return;
    }

    if (operation === 'models') {
      if (req.method !== 'GET') return sendJson(res, 405, errorBody(dialect, 405, 'method not allowed'));
      if (modelsFault === 'down') return sendJson(res, 503, errorBody(dialect, 503, 'models are down'));
      if (modelsFault === 'hang') return; // the client's disconnect ends it
      if (modelsFault === 'not-json') {
        res.writeHead(200, { 'content-type': 'text/html' });
        res.end('<html><body>Welcome</body></html>');
        return;
      }
      if (modelsFault === 'not-a-list') return sendJson(res, 200, { object: 'list', models: 'none' });
      if (dialect === 'anthropic') {
        const limit = Math.max(1, Math.min(1000, Number(url.searchParams.get('limit') ?? 20) || 20));
        const after = url.searchParams.get('after_id');
        const start = after === null ? 0 : anthropicModels.indexOf(after) + 1;
        const page = anthropicModels.slice(start, start + limit);
        sendJson(res, 200, {
          data: page.map((id) => ({ type: 'model', id, display_name: id, created_at: '2025-01-01T00:00:00Z' })),
          has_more: start + limit < anthropicModels.length,
          first_id: page[0] ?? null,
          last_id: page[page.length - 1] ?? null,
        });
        return;
      }
      sendJson(res, 200, {
        object: 'list',
        data: openaiModels.map((id) => ({ id, object: 'model', created: 1_700_000_000, owned_by: 'mock' })),
      });
      return;
    }
    if (req.method !== 'POST' || !isRecord(body)) {
      sendJson(res, 400, errorBody(dialect, 400, 'expected a JSON object body'));
      return;
    }
    const model = azure ? decodeURIComponent(azure[1] ?? '') : typeof body.model === 'string' ? body.model : '';
    const id = `mock-${++sequence}`;
    const idHeader: Record<string, string> = dialect === 'anthropic' ? { 'request-id': `req_${id}` } : { 'x-request-id': `req_${id}` };

    // Fault modes that answer before any content.
    const status = /^mock-(\d{3})$/.exec(model);
    if (status) {
      const code = Number(status[1]);
      sendJson(res, code, errorBody(dialect, code, `mock status ${code}`), code === 429 || code === 503 ? { 'retry-after': '0', ...idHeader } : idHeader);
      return;
    }
    if (model === 'mock-flaky') {
      const n = (flakyCounts.get(model) ?? 0) + 1;
      flakyCounts.set(model, n);
      if (n <= flakyFailures) {
        sendJson(res, 503, errorBody(dialect, 503, 'mock flaky failure'), { 'retry-after': '0' });
        return;
      }
    }
    if (model === 'mock-echo-key') {
      const key = String(presented ?? '');
      sendJson(res, 400, errorBody(dialect, 400, `Key ${key} is not valid for this model (starting ${key.slice(2, 12)}).`));
      return;
    }
    if (model === 'mock-echo-key-encoded') {
      sendJson(res, 400, encodedKeyEchoBody(dialect, String(presented ?? '')));
      return;
    }
    if (model === 'mock-hang-first-byte') return; // the client's disconnect ends it
    if (model === 'mock-slow' && body.stream !== true && !(await pause(res, slowMs))) return;

    if (operation === 'embeddings') {
      const inputs = Array.isArray(body.input) ? body.input : [body.input];
      sendJson(
        res,
        200,
        {
          object: 'list',
          data: inputs.map((_, index) => ({ object: 'embedding', index, embedding: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8] })),
          model,
          ...(model === 'mock-no-usage' ? {} : { usage: { prompt_tokens: 5 * inputs.length, total_tokens: 5 * inputs.length } }),
        },
        idHeader,
      );
      return;
    }

    const large = model === 'mock-large';
    const pieceCount = large ? Math.max(1, Number(body.max_tokens) || 1) : MOCK_TEXT_PIECES.length;
    const pieceAt = (i: number): string => (large ? `${String(i).padStart(8, '0')}${'x'.repeat(1016)}` : (MOCK_TEXT_PIECES[i] ?? ''));
    const noUsage = model === 'mock-no-usage';

    if (body.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', ...idHeader });
      const events = dialect === 'anthropic' ? anthropicEvents(id, model, pieceCount, pieceAt, noUsage) : openAIEvents(id, model, body, pieceCount, pieceAt, noUsage);
      let sent = 0;
      if (model === 'mock-slow-first-event') {
        res.flushHeaders();
        if (!(await pause(res, slowMs))) return;
      }
      for (const event of events) {
        if (model === 'mock-slow' && !(await pause(res, slowChunkMs))) return;
        if (!(await write(res, event))) return;
        streamedBytes += Buffer.byteLength(event);
        sent++;
        if (sent === 3 && model === 'mock-break-midevent') {
          const half = (events[3] ?? '').slice(0, 20);
          noteWritten(res, half);
          res.write(half);
          await pause(res, 20);
          breakSocket();
          return;
        }
        if (sent === 3 && model === 'mock-break-midstream') {
          // Let the bytes leave before cutting the connection, as a crashing upstream would.
          await pause(res, 20);
          breakSocket();
          return;
        }
        if (sent === 3 && model === 'mock-hang-midstream') return;
      }
      res.end();
      return;
    }

    const text = Array.from({ length: pieceCount }, (_, i) => pieceAt(i)).join('');
    const completion = large ? pieceCount : MOCK_COMPLETION_TOKENS;
    const json =
      dialect === 'anthropic'
        ? {
            id: `msg_${id}`,
            type: 'message',
            role: 'assistant',
            model,
            content: [{ type: 'text', text }],
            stop_reason: 'end_turn',
            stop_sequence: null,
            ...(noUsage ? {} : { usage: { input_tokens: MOCK_PROMPT_TOKENS, output_tokens: completion } }),
          }
        : {
            id: `chatcmpl-${id}`,
            object: 'chat.completion',
            created: 1_700_000_000,
            model,
            choices: [{ index: 0, message: { role: 'assistant', content: text, refusal: null }, logprobs: null, finish_reason: 'stop' }],
            ...(noUsage ? {} : { usage: { prompt_tokens: MOCK_PROMPT_TOKENS, completion_tokens: completion, total_tokens: MOCK_PROMPT_TOKENS + completion } }),
          };
    if (model === 'mock-break-midstream') {
      const whole = JSON.stringify(json);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(whole)), ...idHeader });
      const half = whole.slice(0, Math.floor(whole.length / 2));
      noteWritten(res, half);
      res.write(half);
      await pause(res, 20);
      breakSocket();
      return;
    }
    sendJson(res, 200, json, idHeader);
  }

  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    get openConnections() {
      return sockets.size;
    },
    get totalConnections() {
      return totalConnections;
    },
    get abortedRequests() {
      return abortedRequests;
    },
    get streamedBytes() {
      return streamedBytes;
    },
    get modelsFault() {
      return modelsFault;
    },
    set modelsFault(fault: ModelsFault) {
      modelsFault = fault;
    },
    reset() {
      requests.length = 0;
      flakyCounts.clear();
      abortedRequests = 0;
      streamedBytes = 0;
      totalConnections = sockets.size;
    },
    async waitFor(predicate, timeoutMs = 3_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error('mock vendor: condition not met in time');
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      for (const socket of sockets) socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

function sse(data: unknown, event?: string): string {
  return `${event ? `event: ${event}\n` : ''}data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`;
}

function openAIEvents(
  id: string,
  model: string,
  body: Record<string, unknown>,
  pieces: number,
  pieceAt: (i: number) => string,
  noUsage: boolean,
): string[] {
  const base = { id: `chatcmpl-${id}`, object: 'chat.completion.chunk', created: 1_700_000_000, model };
  const events = [sse({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] })];
  for (let i = 0; i < pieces; i++) {
    events.push(sse({ ...base, choices: [{ index: 0, delta: { content: pieceAt(i) }, logprobs: null, finish_reason: null }] }));
  }
  events.push(sse({ ...base, choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: 'stop' }] }));
  const options = body.stream_options;
  if (!noUsage && isRecord(options) && options.include_usage === true) {
    events.push(sse({ ...base, choices: [], usage: { prompt_tokens: MOCK_PROMPT_TOKENS, completion_tokens: pieces, total_tokens: MOCK_PROMPT_TOKENS + pieces } }));
  }
  events.push(sse('[DONE]'));
  return events;
}

function anthropicEvents(id: string, model: string, pieces: number, pieceAt: (i: number) => string, noUsage: boolean): string[] {
  const events = [
    sse(
      {
        type: 'message_start',
        message: {
          id: `msg_${id}`,
          type: 'message',
          role: 'assistant',
          model,
          content: [],
          stop_reason: null,
          stop_sequence: null,
          ...(noUsage ? {} : { usage: { input_tokens: MOCK_PROMPT_TOKENS, output_tokens: 1 } }),
        },
      },
      'message_start',
    ),
    sse({ type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }, 'content_block_start'),
    sse({ type: 'ping' }, 'ping'),
  ];
  for (let i = 0; i < pieces; i++) {
    events.push(sse({ type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: pieceAt(i) } }, 'content_block_delta'));
  }
  events.push(sse({ type: 'content_block_stop', index: 0 }, 'content_block_stop'));
  events.push(
    sse(
      { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, ...(noUsage ? {} : { usage: { output_tokens: pieces } }) },
      'message_delta',
    ),
  );
  events.push(sse({ type: 'message_stop' }, 'message_stop'));
  return events;
}
