/**
 * The relay stage of a proxied call (src/gateway/proxy.ts): the chosen answer goes to the client.
 * - a 4xx from the provider: its status, and its error rebuilt from safe fields (src/gateway/upstream-errors.ts);
 * - JSON: sent whole when it was read whole; otherwise streamed with its tail kept for usage;
 * - SSE: relayed chunk by chunk with backpressure, whole events at a time, with the provider's
 *   bytes; usage read on the way by the format's adapter, and the usage chunk the proxy asked for
 *   on the client's behalf taken out again (`createSseRelayFilter`, the per-chunk hot path). A
 *   stream broken off ends with a terminal error event in the client's format.
 */
import { StringDecoder } from 'node:string_decoder';
import type { ServerResponse } from 'node:http';
import type { WireAdapter, WireFormat } from './adapters/index.ts';
import { GatewayError } from './errors.ts';
import { errorCodeOf, header, TIMEOUT_CODES } from './proxy-attempt.ts';
import { cancelError, Cancelled, NO_USAGE, resultOf, type Answer, type CallState, type ForwardResult } from './proxy-call.ts';
import type { SseBlock } from './sse.ts';
import { createSseParser } from './sse.ts';
import { findUsageInJsonTail, type Usage } from './tokens.ts';
import { rebuildVendorError } from './upstream-errors.ts';
import { fromAppError } from './vendor-errors.ts';

/** A stream's headers wait this long for its first event to travel with; then they go alone. */
const STREAM_HEADERS_FLUSH_MS = 20;

/** Resolves when `res` can take more data, or when it closed (then false). */
function drained(res: ServerResponse): Promise<boolean> {
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

/** True when `text` ends with a blank line (two line ends), i.e. after a complete SSE event. */
function endsWithBlankLine(text: string): boolean {
  const lineEnd = text.endsWith('\r\n') ? 2 : text.endsWith('\n') || text.endsWith('\r') ? 1 : 0;
  if (lineEnd === 0) return false;
  const before = text.slice(0, -lineEnd);
  return before.endsWith('\n') || before.endsWith('\r');
}

/** What a stream's relay passes on, and the usage it saw. */
export interface SseRelayFilter {
  /** What goes to the client for one upstream chunk: the chunk itself when all of it goes on unchanged. */
  chunk(chunk: Buffer): Buffer | string;
  /** The rest at the end of the stream; with `completeOnly`, a partial last event is dropped. */
  end(completeOnly: boolean): string;
  /** What the client got so far ends with a complete event. */
  readonly atBlockEnd: boolean;
  usage(): Usage;
}

/**
 * The per-chunk part of a stream's relay: whole events only (the parser holds back a partial one),
 * so that if the provider breaks off, the error event is not glued to half an event. With
 * `stripUsage`, a usage-only event (asked for by the gateway, not the client, who may not expect
 * it) is taken out.
 */
export function createSseRelayFilter(adapter: WireAdapter<WireFormat>, requestBody: unknown, stripUsage: boolean): SseRelayFilter {
  const parser = createSseParser();
  const tracker = adapter.streamUsageTracker(requestBody);
  // Node's StringDecoder: holds a character cut between chunks, and is cheaper per chunk than TextDecoder.
  const decoder = new StringDecoder('utf8');
  let atBlockEnd = true;
  // No character of the previous chunk is still held by the decoder (it ended in an ASCII byte).
  let decoderEmpty = true;
  const keep = (blocks: SseBlock[]): string => {
    let out = '';
    for (const block of blocks) {
      const { usageOnly } = tracker.observe(block);
      if (!(stripUsage && usageOnly)) out += block.raw;
    }
    if (out.length > 0) atBlockEnd = endsWithBlankLine(out);
    return out;
  };
  return {
    chunk(chunk) {
      const text = decoder.write(chunk);
      const out = keep(parser.feed(text));
      // The usual case, a chunk of whole events passed on entirely: its own bytes go out, not
      // the same text encoded again.
      const lastAscii = (chunk[chunk.length - 1] ?? 0) < 0x80;
      const whole = decoderEmpty && out === text && lastAscii;
      decoderEmpty = lastAscii;
      return whole ? chunk : out;
    },
    end(completeOnly) {
      const rest = [...parser.feed(decoder.end()), ...parser.end()];
      return keep(completeOnly ? rest.filter((b) => !b.oversized) : rest);
    },
    get atBlockEnd() {
      return atBlockEnd;
    },
    usage: () => tracker.usage(),
  };
}

/**
 * Copies the rest of `answer` to the client, first `head`, passing each chunk through `transform`,
 * waiting for 'drain' whenever `write` says the buffer is full.
 */
async function pipe(state: CallState, answer: Answer, head: Buffer, transform: (chunk: Buffer) => Buffer | string): Promise<{ completed: boolean; error?: GatewayError }> {
  const { res } = state;
  const send = async (data: Buffer | string): Promise<boolean> => {
    if (data.length === 0) return true;
    if (state.stopReason === 'client' || res.destroyed) return false;
    const fits = res.write(data);
    state.peakBufferedBytes = Math.max(state.peakBufferedBytes, res.writableLength);
    return fits || (await drained(res));
  };
  try {
    if (!(await send(head))) return { completed: false };
    const iterator = answer.rest;
    if (iterator === null) return { completed: true };
    for (;;) {
      const next = await iterator.next();
      if (next.done) return { completed: true };
      if (!(await send(transform(next.value)))) {
        answer.destroy();
        return { completed: false };
      }
    }
  } catch (err) {
    answer.destroy();
    // The client leaving is not an upstream failure.
    if (state.stopReason === 'client') return { completed: false };
    if (state.stopReason === 'total-timeout' || TIMEOUT_CODES.has(errorCodeOf(err) ?? '')) return { completed: false, error: new GatewayError('UPSTREAM_TIMEOUT', undefined, { cause: err }) };
    if (state.stopReason === 'caller') return { completed: false, error: cancelError(state) };
    return { completed: false, error: new GatewayError('UPSTREAM_ERROR', undefined, { cause: err }) };
  }
}

/** A 4xx from the provider: its status, and its error rebuilt from safe fields. */
function relayUpstreamError(state: CallState, answer: Answer): ForwardResult {
  const { request, res } = state;
  const text = JSON.stringify(rebuildVendorError(request.format, answer.status, answer.head.toString('utf8'), state.secrets, request.requestId));
  res.writeHead(answer.status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...(request.requestId ? { 'x-request-id': request.requestId } : {}),
  });
  res.end(text);
  return resultOf(state, answer.status, NO_USAGE);
}

/** A JSON success: sent whole when it was read whole; otherwise streamed with its tail kept for usage. */
async function relayJson(state: CallState, answer: Answer): Promise<ForwardResult> {
  const { adapter, request, res } = state;
  const contentType = header(answer.headers, 'content-type') ?? 'application/json';
  if (answer.rest === null) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.head.toString('utf8'));
    } catch {
      parsed = undefined;
    }
    // Metered even if the client is gone by now: the provider has done (and billed) the work.
    const usage = adapter.usageFromJson(parsed, request.body);
    if (res.destroyed) return resultOf(state, 499, usage);
    res.writeHead(answer.status, { 'content-type': contentType, 'content-length': String(answer.head.length) });
    res.end(answer.head);
    return resultOf(state, answer.status, usage);
  }
  // Too large to hold: pass it through and look for `usage` in the last part.
  res.writeHead(answer.status, { 'content-type': contentType });
  let tail = answer.head.subarray(-65_536);
  const ok = await pipe(state, answer, answer.head, (chunk) => {
    tail = Buffer.concat([tail, chunk]).subarray(-65_536);
    return chunk;
  });
  if (!ok.completed) {
    // A JSON body cut short cannot carry an error event: breaking the connection tells the client.
    if (!res.destroyed) res.destroy();
    return resultOf(state, answer.status, adapter.usageFromJson(undefined, request.body), ok.error ?? new GatewayError('UPSTREAM_ERROR'));
  }
  res.end();
  return resultOf(state, answer.status, adapter.usageFromJson({ usage: findUsageInJsonTail(tail.toString('utf8')) }, request.body));
}

/** A stream: relayed chunk by chunk with backpressure, usage read on the way. */
async function relayStream(state: CallState, answer: Answer): Promise<ForwardResult> {
  const { request, res } = state;
  res.writeHead(answer.status, {
    'content-type': header(answer.headers, 'content-type') ?? 'text/event-stream',
    'cache-control': 'no-cache',
    'x-accel-buffering': 'no',
  });
  // The headers leave with the first event, in one write; only a provider slow to send its
  // first event gets them on their own, so the client knows the stream has started.
  let relayed = false;
  const headersTimer = setTimeout(() => {
    if (!relayed && !res.destroyed) res.flushHeaders();
  }, STREAM_HEADERS_FLUSH_MS);
  const filter = createSseRelayFilter(state.adapter, request.body, answer.addedUsageOption);
  const ok = await pipe(state, answer, Buffer.alloc(0), (chunk) => {
    const out = filter.chunk(chunk);
    if (!relayed && out.length > 0) {
      relayed = true;
      clearTimeout(headersTimer);
    }
    return out;
  });
  clearTimeout(headersTimer);
  if (state.stopReason === 'client' || res.destroyed) {
    filter.end(false);
    return resultOf(state, answer.status, filter.usage(), ok.error);
  }
  if (!ok.completed) {
    // A partial last event is dropped; the client's parser would discard it anyway.
    const complete = filter.end(true);
    const error = ok.error ?? new GatewayError('UPSTREAM_ERROR');
    const event = state.adapter.sseErrorEvent(fromAppError(error, request.requestId));
    res.end(`${complete}${filter.atBlockEnd ? '' : '\n\n'}${event}`);
    return resultOf(state, answer.status, filter.usage(), error);
  }
  // The provider ended without a final blank line: pass the last bytes on as they are.
  const tail = filter.end(false);
  if (tail.length > 0) res.write(tail);
  res.end();
  return resultOf(state, answer.status, filter.usage());
}

/** The relay stage: the answer the attempt stage chose, to the client. */
export async function relayAnswer(state: CallState, answer: Answer): Promise<ForwardResult> {
  state.active = answer;
  if (state.stopReason !== null) {
    answer.destroy();
    throw new Cancelled();
  }
  if (answer.sse) return relayStream(state, answer);
  if (answer.status >= 400) return relayUpstreamError(state, answer);
  return relayJson(state, answer);
}
