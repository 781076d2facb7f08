/**
 * SSRF defence of the upstream client (GW-2: upstream hosts are an allowlist): the host is checked
 * before any DNS, and the address after DNS, inside the connection's own lookup, so DNS rebinding
 * to a private or metadata address fails too.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Agent } from 'undici';
import { GatewayError } from '../../src/gateway/errors.ts';
import {
  assertUpstreamUrlAllowed,
  checkCidr,
  checkHostPattern,
  createAddressCheck,
  createUpstreamAgent,
  isHostAllowed,
  isHostPortAllowed,
  parseHostEntry,
  type UpstreamAgentOptions,
  type UpstreamResolver,
} from '../../src/gateway/upstream.ts';

let server: Server;
let port: number;
let connections = 0;
beforeAll(async () => {
  server = createServer((_req, res) => res.end('ok'));
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  server.close();
  await once(server, 'close');
});

/** A resolver that answers from a table and counts its calls. */
function fakeResolver(table: Record<string, string[]>): UpstreamResolver & { calls: string[] } {
  const calls: string[] = [];
  const resolve = async (hostname: string) => {
    calls.push(hostname);
    const addresses = table[hostname];
    if (!addresses) throw Object.assign(new Error('not found'), { code: 'ENOTFOUND' });
    return addresses.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };
  return Object.assign(resolve, { calls });
}

async function get(agent: Agent, url: string): Promise<string> {
  const { body } = await agent.request({ origin: new URL(url).origin, path: '/', method: 'GET' });
  return body.text();
}

async function refusal(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return (err as GatewayError).code;
}

function agentWith(options: Partial<UpstreamAgentOptions>): Agent {
  return createUpstreamAgent({ allowedHosts: [], allowInsecureHttp: true, connectTimeoutMs: 2_000, ...options });
}

describe('host allowlist, before DNS', () => {
  it('refuses a host that is not on the list without resolving it', async () => {
    const resolve = fakeResolver({ 'evil.example': ['127.0.0.1'] });
    const agent = agentWith({ allowedHosts: [`api.example.com:${port}`, '*.openai.azure.com:*'], allowedCidrs: ['127.0.0.0/8'], resolve });
    expect(await refusal(get(agent, `http://evil.example:${port}/`))).toBe('UPSTREAM_HOST_NOT_ALLOWED');
    expect(await refusal(get(agent, `http://openai.azure.com:${port}/`))).toBe('UPSTREAM_HOST_NOT_ALLOWED');
    expect(resolve.calls).toEqual([]);
    expect(() => assertUpstreamUrlAllowed(new URL('https://evil.example/v1'), { allowedHosts: ['api.example.com'] })).toThrow(GatewayError);
    await agent.close();
  });

  it('refuses plain http unless allowed', async () => {
    const agent = createUpstreamAgent({ allowedHosts: ['127.0.0.1:*'], allowedCidrs: ['127.0.0.0/8'] });
    expect(await refusal(get(agent, `http://127.0.0.1:${port}/`))).toBe('UPSTREAM_SCHEME_NOT_ALLOWED');
    await agent.close();
  });

  it('matches exact names and *.suffix patterns, case and trailing dot aside', () => {
    const list = ['api.openai.com', '*.openai.azure.com', '::1'];
    expect(isHostAllowed('api.openai.com', list)).toBe(true);
    expect(isHostAllowed('API.OpenAI.com.', list)).toBe(true);
    expect(isHostAllowed('myres.openai.azure.com', list)).toBe(true);
    expect(isHostAllowed('a.b.openai.azure.com', list)).toBe(true);
    expect(isHostAllowed('openai.azure.com', list)).toBe(false);
    expect(isHostAllowed('evilopenai.azure.com', list)).toBe(false);
    expect(isHostAllowed('api.openai.com.evil.com', list)).toBe(false);
    expect(isHostAllowed('[::1]', list)).toBe(true);
    expect(isHostAllowed('[0:0:0:0:0:0:0:1]', list)).toBe(true);
    expect(isHostAllowed('', list)).toBe(false);
  });

  it('validates allowlist entries and CIDRs', () => {
    expect(checkHostPattern('api.openai.com')).toBeNull();
    expect(checkHostPattern('*.openai.azure.com')).toBeNull();
    expect(checkHostPattern('*.com')).not.toBeNull();
    expect(checkHostPattern('a.*.com')).not.toBeNull();
    expect(checkHostPattern('exa mple.com')).not.toBeNull();
    expect(checkCidr('10.0.0.0/8')).toBeNull();
    expect(checkCidr('fd00::/8')).toBeNull();
    expect(checkCidr('127.0.0.1')).toBeNull();
    expect(checkCidr('10.0.0.0/33')).not.toBeNull();
    expect(checkCidr('nope/8')).not.toBeNull();
    expect(() => createUpstreamAgent({ allowedHosts: ['*'] })).toThrow(TypeError);
    expect(() => createUpstreamAgent({ allowedHosts: [], allowedCidrs: ['10.0.0.0/99'] })).toThrow(TypeError);
  });
});

describe('ports: an allowed host is reachable only on its allowed ports', () => {
  it('attack: a provider on an allowed host but another port (an internal admin service) — UPSTREAM_PORT_NOT_ALLOWED, before DNS', async () => {
    const resolve = fakeResolver({ 'api.example.com': ['127.0.0.1'] });
    // A bare entry allows only the scheme's default port (443 for https, 80 for http).
    const bare = agentWith({ allowedHosts: ['api.example.com'], allowedCidrs: ['127.0.0.0/8'], resolve });
    expect(await refusal(get(bare, `http://api.example.com:${port}/`))).toBe('UPSTREAM_PORT_NOT_ALLOWED');
    await bare.close();
    const other = agentWith({ allowedHosts: [`api.example.com:${port === 65_535 ? port - 1 : port + 1}`], allowedCidrs: ['127.0.0.0/8'], resolve });
    expect(await refusal(get(other, `http://api.example.com:${port}/`))).toBe('UPSTREAM_PORT_NOT_ALLOWED');
    await other.close();
    expect(resolve.calls).toEqual([]);
    const listed = agentWith({ allowedHosts: [`api.example.com:${port}`], allowedCidrs: ['127.0.0.0/8'], resolve });
    expect(await get(listed, `http://api.example.com:${port}/`)).toBe('ok');
    await listed.close();
    const any = agentWith({ allowedHosts: ['api.example.com:*'], allowedCidrs: ['127.0.0.0/8'], resolve });
    expect(await get(any, `http://api.example.com:${port}/`)).toBe('ok');
    await any.close();
    expect(() => assertUpstreamUrlAllowed(new URL('https://api.example.com:8443/v1'), { allowedHosts: ['api.example.com'] })).toThrow(/./);
    expect(() => assertUpstreamUrlAllowed(new URL('https://api.example.com/v1'), { allowedHosts: ['api.example.com'] })).not.toThrow();
  });

  it('parses host:port, [v6]:port, host:* and bare IPv6 entries; refuses ports out of range', () => {
    expect(parseHostEntry('api.openai.com')).toEqual({ host: 'api.openai.com', port: null });
    expect(parseHostEntry('ollama.internal:11434')).toEqual({ host: 'ollama.internal', port: 11434 });
    expect(parseHostEntry('[fd00::5]:8443')).toEqual({ host: 'fd00::5', port: 8443 });
    expect(parseHostEntry('fd00::5')).toEqual({ host: 'fd00::5', port: null });
    expect(parseHostEntry('vllm.internal:*')).toEqual({ host: 'vllm.internal', port: '*' });
    for (const bad of ['a.example:0', 'a.example:65536', 'a.example:', 'a.example:8o', '[::1]x', '[::1']) expect(checkHostPattern(bad), bad).not.toBeNull();
    expect(isHostPortAllowed('api.openai.com', 443, ['api.openai.com'])).toBe(true);
    expect(isHostPortAllowed('api.openai.com', 8443, ['api.openai.com'])).toBe(false);
    expect(isHostPortAllowed('x.openai.azure.com', 8443, ['*.openai.azure.com:8443'])).toBe(true);
    expect(isHostPortAllowed('::1', 8443, ['[::1]:8443'])).toBe(true);
  });
});

describe('address check, after DNS', () => {
  it('refuses loopback, private, link-local (cloud metadata), CGNAT, multicast, reserved; allows public', () => {
    const allowed = createAddressCheck();
    for (const address of [
      '127.0.0.1',
      '127.255.0.9',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '100.127.255.255',
      '0.0.0.0',
      '0.1.2.3',
      '224.0.0.1',
      '239.255.255.250',
      '240.0.0.1',
      '255.255.255.255',
      '198.18.0.1',
      '::',
      '::1',
      'fc00::1',
      'fd12:3456::1',
      'fe80::1',
      'fe80::1%eth0',
      'ff02::1',
      '2001:db8::1',
    ]) {
      expect(allowed(address), address).toBe(false);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '100.128.0.1', '172.32.0.1', '192.169.0.1', '2606:4700:4700::1111', '2a00:1450:4001::200e']) {
      expect(allowed(address), address).toBe(true);
    }
    expect(allowed('not-an-ip')).toBe(false);
  });

  it('sees through IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4)', () => {
    const allowed = createAddressCheck();
    for (const address of [
      '::ffff:127.0.0.1',
      '::ffff:7f00:1',
      '::FFFF:169.254.169.254',
      '::ffff:a9fe:a9fe',
      '0:0:0:0:0:ffff:10.0.0.1',
      '::127.0.0.1',
      '64:ff9b::a9fe:a9fe',
      '64:ff9b::10.0.0.1',
      '2002:a9fe:a9fe::1',
      '2002:c0a8:0101::',
    ]) {
      expect(allowed(address), address).toBe(false);
    }
    expect(allowed('::ffff:8.8.8.8')).toBe(true);
    expect(allowed('64:ff9b::808:808')).toBe(true);
    expect(allowed('2002:808:808::1')).toBe(true);
  });

  it('allows exactly the ranges the operator lists', () => {
    const allowed = createAddressCheck(['127.0.0.0/8', 'fd00:1::/32', '10.0.5.7']);
    expect(allowed('127.0.0.1')).toBe(true);
    expect(allowed('::ffff:127.0.0.1')).toBe(true);
    expect(allowed('fd00:1::5')).toBe(true);
    expect(allowed('10.0.5.7')).toBe(true);
    expect(allowed('10.0.5.8')).toBe(false);
    expect(allowed('::1')).toBe(false);
    expect(allowed('169.254.169.254')).toBe(false);
  });

  it('refuses `localhost` (allowed by name) because it resolves to loopback', async () => {
    const agent = agentWith({ allowedHosts: [`localhost:${port}`] });
    expect(await refusal(get(agent, `http://localhost:${port}/`))).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
    await agent.close();
  });

  it('connects to `localhost` once loopback is allowed', async () => {
    // localhost may resolve to 127.0.0.1 and ::1; every answer must be allowed.
    const agent = agentWith({ allowedHosts: [`localhost:${port}`], allowedCidrs: ['127.0.0.0/8', '::1/128'] });
    expect(await get(agent, `http://localhost:${port}/`)).toBe('ok');
    await agent.close();
    const only4 = agentWith({ allowedHosts: [`localhost:${port}`], allowedCidrs: ['127.0.0.0/8'], resolve: fakeResolver({ localhost: ['127.0.0.1'] }) });
    expect(await get(only4, `http://localhost:${port}/`)).toBe('ok');
    await only4.close();
  });

  it('checks IP literals, which never reach DNS, including bracketed IPv6', async () => {
    const resolve = fakeResolver({});
    const agent = agentWith({ allowedHosts: [`127.0.0.1:${port}`, `[::1]:${port}`], resolve });
    expect(await refusal(get(agent, `http://127.0.0.1:${port}/`))).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
    expect(await refusal(get(agent, `http://[::1]:${port}/`))).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
    expect(await refusal(get(agent, `http://[::ffff:127.0.0.1]:${port}/`))).toBe('UPSTREAM_HOST_NOT_ALLOWED');
    await agent.close();
    const allowed = agentWith({ allowedHosts: [`127.0.0.1:${port}`], allowedCidrs: ['127.0.0.1/32'], resolve });
    expect(await get(allowed, `http://127.0.0.1:${port}/`)).toBe('ok');
    await allowed.close();
    expect(resolve.calls).toEqual([]);
  });

  it('DNS rebinding: an allowed public name that resolves to a private or metadata address is refused at connect', async () => {
    for (const address of ['169.254.169.254', '10.0.0.8', '127.0.0.1', '::1', '::ffff:169.254.169.254']) {
      const resolve = fakeResolver({ 'api.example.com': [address] });
      const agent = agentWith({ allowedHosts: [`api.example.com:${port}`], resolve });
      expect(await refusal(get(agent, `http://api.example.com:${port}/`)), address).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
      expect(resolve.calls).toEqual(['api.example.com']);
      await agent.close();
    }
  });

  it('refuses a name whose answers mix public and private addresses', async () => {
    const resolve = fakeResolver({ 'api.example.com': ['8.8.8.8', '127.0.0.1'] });
    const agent = agentWith({ allowedHosts: [`api.example.com:${port}`], resolve });
    expect(await refusal(get(agent, `http://api.example.com:${port}/`))).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
    await agent.close();
  });

  it('resolves each new connection through the check: a name that changes its answer is caught on the next connect', async () => {
    const table: Record<string, string[]> = { 'api.example.com': ['127.0.0.1'] };
    const resolve = fakeResolver(table);
    const agent = agentWith({ allowedHosts: [`api.example.com:${port}`], allowedCidrs: ['127.0.0.1/32'], resolve, keepAliveTimeoutMs: 1_000 });
    expect(await get(agent, `http://api.example.com:${port}/`)).toBe('ok');
    await agent.close();
    table['api.example.com'] = ['169.254.169.254'];
    const again = agentWith({ allowedHosts: [`api.example.com:${port}`], allowedCidrs: ['127.0.0.1/32'], resolve });
    expect(await refusal(get(again, `http://api.example.com:${port}/`))).toBe('UPSTREAM_ADDRESS_NOT_ALLOWED');
    await again.close();
  });
});

describe('pooling', () => {
  it('keeps connections alive between requests to one origin', async () => {
    const resolve = vi.fn(fakeResolver({ 'api.example.com': ['127.0.0.1'] }));
    const agent = agentWith({ allowedHosts: [`api.example.com:${port}`], allowedCidrs: ['127.0.0.0/8'], resolve });
    const before = connections;
    for (let i = 0; i < 10; i++) expect(await get(agent, `http://api.example.com:${port}/`)).toBe('ok');
    // undici may open a second socket while the first is being released; never one per request.
    expect(connections - before).toBeLessThanOrEqual(2);
    expect(resolve.mock.calls.length).toBe(connections - before);
    await agent.close();
  });
});
