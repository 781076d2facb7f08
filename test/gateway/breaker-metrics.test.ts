/**
 * OPS-2 and GW-3: /metrics shows each provider breaker's state and counts its transitions. A
 * failing provider (the mock vendor answering 503) opens its breaker; the scrape then shows it
 * open, with one closed -> open transition, while a healthy provider's breaker stays closed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey, createOrgAndWorkspace, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser } from '../support/users.ts';

const METRICS_TOKEN = 'metrics-token-breakers-0123456789';
const VOLUME = 3;

let t: GatewayTestApp;
let key: string;

beforeAll(async () => {
  t = await startGatewayApp({
    env: { GATEHOUSE_METRICS_TOKEN: METRICS_TOKEN },
    overrides: {
      'gateway.retry.maxRetries': 0,
      'gateway.breaker.volumeThreshold': VOLUME,
      'gateway.breaker.errorThresholdPercentage': 50,
      'gateway.breaker.resetTimeoutMs': 3_600_000,
    },
  });
  const owner = await signUpUser(t.app, t.mail, 'breaker-metrics@example.com');
  const { org, ws } = await createOrgAndWorkspace(t, owner, 'Breaker metrics');
  key = (await createApiKey(t, owner, org, ws)).key;
});

afterAll(async () => {
  await t?.close();
});

async function chat(model: string): Promise<number> {
  const res = await fetch(`${t.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, messages: [{ role: 'user', content: 'hi' }] }),
  });
  await res.arrayBuffer();
  return res.status;
}

async function scrape(): Promise<string> {
  const res = await t.app.inject({ url: '/metrics', headers: { authorization: `Bearer ${METRICS_TOKEN}` } });
  expect(res.statusCode).toBe(200);
  return res.body;
}

describe('breaker metrics', () => {
  it('a failing provider\'s breaker shows as open (2) with one closed->open transition; a healthy one as closed (0)', async () => {
    expect(await chat('mock-model')).toBe(200);
    const statuses: number[] = [];
    for (let i = 0; i < VOLUME + 2; i++) statuses.push(await chat('mock-503'));
    // Failures until the breaker opens, then fast 503s without calling the provider.
    expect(statuses.slice(0, VOLUME)).toEqual(Array(VOLUME).fill(502));
    expect(statuses.at(-1)).toBe(503);
    expect(t.node.gateway.proxy.breakerState('platform:breaker-test')).toBe('open');

    const text = await scrape();
    expect(text).toContain('# TYPE gatehouse_gateway_breaker_state gauge');
    expect(text).toContain('gatehouse_gateway_breaker_state{provider="platform:breaker-test"} 2');
    expect(text).toContain('gatehouse_gateway_breaker_state{provider="platform:openai"} 0');
    expect(text).toContain('gatehouse_gateway_breaker_transitions_total{provider="platform:breaker-test",from="closed",to="open"} 1');
    expect(text).not.toMatch(/gatehouse_gateway_breaker_transitions_total\{provider="platform:openai"/);
  });
});
