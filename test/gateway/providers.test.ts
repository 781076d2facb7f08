import { describe, expect, it } from 'vitest';
import { gatewayConfigSchema } from '../../src/gateway/config.ts';
import { buildUpstreamCall, providerSchema, type UpstreamCallInput } from '../../src/gateway/providers.ts';

const KEY = 'vendor-key-for-tests';
const messages = [{ role: 'user', content: 'hi' }];

function call(overrides: Partial<UpstreamCallInput> & Pick<UpstreamCallInput, 'provider'>): ReturnType<typeof buildUpstreamCall> {
  return buildUpstreamCall({ apiKey: KEY, model: 'm1', path: '/v1/chat/completions', method: 'POST', body: { model: 'alias', messages }, stream: false, ...overrides });
}

describe('upstream calls per provider kind', () => {
  it('openai: Bearer auth, base + /v1 path, model replaced; a trailing /v1 in the base URL is tolerated', () => {
    const c = call({ provider: { id: 'p', kind: 'openai', baseUrl: 'https://api.openai.com' } });
    expect(c).toMatchObject({ origin: 'https://api.openai.com', path: '/v1/chat/completions', method: 'POST', addedUsageOption: false });
    expect(c.headers.authorization).toBe(`Bearer ${KEY}`);
    expect(JSON.parse(c.body ?? '')).toEqual({ model: 'm1', messages });
    expect(call({ provider: { id: 'p', kind: 'openai', baseUrl: 'https://api.openai.com/v1/' } }).path).toBe('/v1/chat/completions');
    expect(call({ provider: { id: 'p', kind: 'openai-compatible', baseUrl: 'https://host.example/openai' } }).path).toBe('/openai/v1/chat/completions');
  });

  it('openai-compatible with no key sends no Authorization header', () => {
    expect(call({ provider: { id: 'p', kind: 'openai-compatible', baseUrl: 'http://ollama:11434' }, apiKey: '' }).headers.authorization).toBeUndefined();
  });

  it('streams ask for usage, merged into the client\'s stream_options, and say whether the gateway added it', () => {
    const added = call({ provider: { id: 'p', kind: 'openai', baseUrl: 'https://api.openai.com' }, stream: true, body: { messages, stream_options: { foo: 1 } } });
    expect(JSON.parse(added.body ?? '')).toMatchObject({ stream: true, stream_options: { foo: 1, include_usage: true } });
    expect(added.addedUsageOption).toBe(true);
    expect(added.headers.accept).toBe('text/event-stream');
    const asked = call({ provider: { id: 'p', kind: 'openai', baseUrl: 'https://api.openai.com' }, stream: true, body: { messages, stream_options: { include_usage: true } } });
    expect(asked.addedUsageOption).toBe(false);
    const off = call({ provider: { id: 'p', kind: 'openai-compatible', baseUrl: 'http://x', streamUsage: false }, stream: true });
    expect(JSON.parse(off.body ?? '')).not.toHaveProperty('stream_options');
    const anthropic = call({ provider: { id: 'a', kind: 'anthropic', baseUrl: 'https://api.anthropic.com' }, path: '/v1/messages', stream: true });
    expect(JSON.parse(anthropic.body ?? '')).not.toHaveProperty('stream_options');
  });

  it('azure-openai: deployment path, api-version, api-key header; unsupported operations throw', () => {
    const provider = { id: 'z', kind: 'azure-openai' as const, baseUrl: 'https://res.openai.azure.com', deployments: { m1: 'prod dep' } };
    const c = call({ provider });
    expect(c.path).toBe('/openai/deployments/prod%20dep/chat/completions?api-version=2024-10-21');
    expect(c.headers['api-key']).toBe(KEY);
    expect(c.headers.authorization).toBeUndefined();
    expect(call({ provider: { ...provider, apiVersion: '2025-01-01-preview' }, model: 'other', path: '/v1/embeddings' }).path).toBe(
      '/openai/deployments/other/embeddings?api-version=2025-01-01-preview',
    );
    expect(() => call({ provider, path: '/v1/models', method: 'GET' })).toThrow(TypeError);
  });

  it('anthropic: x-api-key and anthropic-version', () => {
    const c = call({ provider: { id: 'a', kind: 'anthropic', baseUrl: 'https://api.anthropic.com' }, path: '/v1/messages' });
    expect(c.path).toBe('/v1/messages');
    expect(c.headers).toMatchObject({ 'x-api-key': KEY, 'anthropic-version': '2023-06-01' });
    expect(c.headers.authorization).toBeUndefined();
  });

  it('GET sends no body', () => {
    const c = call({ provider: { id: 'p', kind: 'openai', baseUrl: 'https://api.openai.com' }, path: '/v1/models', method: 'GET', body: undefined });
    expect(c.body).toBeUndefined();
    expect(c.headers['content-type']).toBeUndefined();
  });
});

describe('gateway config', () => {
  it('has working defaults', () => {
    const config = gatewayConfigSchema.parse({});
    expect(config.upstream.allowedHosts).toEqual(['api.openai.com', 'api.anthropic.com', '*.openai.azure.com']);
    expect(config.upstream.allowInsecureHttp).toBe(false);
    expect(config.retry.maxRetries).toBe(2);
    expect(config.prices).toEqual([]);
  });

  it('refuses bad hosts, CIDRs, unknown keys and provider definitions', () => {
    expect(gatewayConfigSchema.safeParse({ upstream: { allowedHosts: ['*'] } }).success).toBe(false);
    expect(gatewayConfigSchema.safeParse({ upstream: { allowedCidrs: ['10.0.0.0/40'] } }).success).toBe(false);
    expect(gatewayConfigSchema.safeParse({ retry: { maxRetries: 2, extra: 1 } }).success).toBe(false);
    expect(providerSchema.safeParse({ id: 'p', kind: 'openai', baseUrl: 'ftp://x' }).success).toBe(false);
    expect(providerSchema.safeParse({ id: 'p', kind: 'bedrock', baseUrl: 'https://x' }).success).toBe(false);
  });
});
