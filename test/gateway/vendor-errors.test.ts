import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/gateway/errors.ts';
import { fromAppError, sendVendorError, toAnthropicErrorBody, toOpenAIErrorBody, toVendorSseErrorEvent, vendorErrorHeaders } from '../../src/gateway/vendor-errors.ts';

describe('vendor-shaped errors', () => {
  it('OpenAI shape: message, type by status, param null, code (vendor aliases where they exist)', () => {
    expect(toOpenAIErrorBody({ status: 401, code: 'UNAUTHENTICATED', message: 'Invalid API key.' })).toEqual({
      error: { message: 'Invalid API key.', type: 'authentication_error', param: null, code: 'invalid_api_key' },
    });
    expect(toOpenAIErrorBody({ status: 404, code: 'MODEL_NOT_FOUND', message: 'No such model.' }).error).toMatchObject({ type: 'not_found_error', code: 'model_not_found' });
    expect(toOpenAIErrorBody({ status: 429, code: 'MONTHLY_LIMIT_REACHED', message: 'Limit.' }).error).toMatchObject({ type: 'rate_limit_error', code: 'insufficient_quota' });
    expect(toOpenAIErrorBody({ status: 403, code: 'FORBIDDEN', message: 'No.' }).error).toMatchObject({ type: 'permission_error', code: 'forbidden' });
  });

  it('Anthropic shape: type by status (overloaded for 503, timeout for 504), request_id when known', () => {
    expect(toAnthropicErrorBody({ status: 429, code: 'RATE_LIMITED', message: 'Slow down.', requestId: 'r1' })).toEqual({
      type: 'error',
      error: { type: 'rate_limit_error', message: 'Slow down.' },
      request_id: 'r1',
    });
    expect(toAnthropicErrorBody({ status: 503, code: 'UPSTREAM_UNAVAILABLE', message: 'x' }).error.type).toBe('overloaded_error');
    expect(toAnthropicErrorBody({ status: 504, code: 'UPSTREAM_TIMEOUT', message: 'x' }).error.type).toBe('timeout_error');
    expect(toAnthropicErrorBody({ status: 502, code: 'UPSTREAM_ERROR', message: 'x' }).error.type).toBe('api_error');
    expect(toAnthropicErrorBody({ status: 401, code: 'UNAUTHENTICATED', message: 'x' }).error.type).toBe('authentication_error');
  });

  it('a 5xx says only what kind of failure it was, whatever message it was given', () => {
    const leaky = { status: 502, code: 'UPSTREAM_ERROR', message: 'connect ECONNREFUSED 10.0.0.7:443 for sk-secret' };
    expect(toOpenAIErrorBody(leaky).error.message).toBe('The AI provider failed to answer.');
    expect(toAnthropicErrorBody(leaky).error.message).toBe('The AI provider failed to answer.');
  });

  it('marks failures a retry cannot fix with x-should-retry: false, and keeps Retry-After', () => {
    const auth = fromAppError(new GatewayError('UPSTREAM_AUTH_FAILED'));
    expect(vendorErrorHeaders(auth)['x-should-retry']).toBe('false');
    const busy = fromAppError(new GatewayError('UPSTREAM_UNAVAILABLE', undefined, { headers: { 'retry-after': '7' } }), 'req-1');
    expect(vendorErrorHeaders(busy)).toMatchObject({ 'retry-after': '7', 'x-request-id': 'req-1' });
    expect(vendorErrorHeaders(busy)['x-should-retry']).toBeUndefined();
  });

  it('SSE error events in each vendor\'s stream shape', () => {
    const input = { status: 502, code: 'UPSTREAM_ERROR', message: 'x' };
    expect(toVendorSseErrorEvent('openai', input)).toBe(`data: ${JSON.stringify(toOpenAIErrorBody(input))}\n\n`);
    expect(toVendorSseErrorEvent('anthropic', input)).toBe(`event: error\ndata: ${JSON.stringify(toAnthropicErrorBody(input))}\n\n`);
  });

  it('sendVendorError writes a JSON response, or ends a started stream with the error event', async () => {
    const server = createServer((req, res) => {
      if (req.url === '/stream') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('data: {"choices":[]}\n\n');
      }
      sendVendorError(res, 'openai', { status: 429, code: 'RATE_LIMITED', message: 'Too many.', headers: { 'retry-after': '3' } });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const plain = await fetch(`${base}/`);
    expect(plain.status).toBe(429);
    expect(plain.headers.get('retry-after')).toBe('3');
    expect(await plain.json()).toEqual({ error: { message: 'Too many.', type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' } });
    const stream = await fetch(`${base}/stream`);
    expect(stream.status).toBe(200);
    expect(await stream.text()).toBe(`data: {"choices":[]}\n\ndata: {"error":{"message":"Too many.","type":"rate_limit_error","param":null,"code":"rate_limit_exceeded"}}\n\n`);
    server.close();
  });
});
