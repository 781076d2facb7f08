/**
 * The steps other features run around every AI call (src/gateway/steps.ts, the AI_CALL_STEPS hook
 * point), through a real node and the stock SDKs: a test module fills the hook point like the input
 * guard or budgets will. A step that throws refuses the call in the vendor's shape before any
 * upstream request or monthly count; each step's settle sees the outcome exactly once (JSON and
 * streams), or `undefined` when a later step or the monthly limit refused; a step's headers reach
 * the client.
 */
import Anthropic, * as AnthropicErrors from '@anthropic-ai/sdk';
import OpenAI, * as OpenAIErrors from 'openai';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FEATURE_MODULES } from '../../src/features.ts';
import { AI_CALL_STEPS, GATEWAY, type AiCallOutcome, type AiCallStep } from '../../src/gateway/index.ts';
import { AppError } from '../../src/server/errors.ts';
import { defineModule, hook, moduleRef } from '../../src/server/module.ts';
import { MOCK_COMPLETION_TOKENS, MOCK_PROMPT_TOKENS } from '../support/mock-vendor.ts';
import { createApiKey, createOrgAndWorkspace, startGatewayApp, type GatewayTestApp } from '../support/gateway.ts';
import { signUpUser } from '../support/users.ts';

/** Settle calls seen, per marker (the last message's text of the call). */
const settled = new Map<string, (AiCallOutcome | undefined)[]>();
/** `before` calls seen, per marker. */
const ran = new Map<string, string[]>();

function markerOf(body: Record<string, unknown>): string {
  const messages = body.messages as { content?: unknown }[] | undefined;
  const last = messages?.[messages.length - 1]?.content;
  return typeof last === 'string' ? last : '';
}

const first: AiCallStep = {
  name: 'test-first',
  order: 10,
  before: async (call) => {
    const marker = markerOf(call.body);
    ran.set(marker, [...(ran.get(marker) ?? []), 'first']);
    if (marker.startsWith('refuse-first')) throw new AppError('TEST_STEP_REFUSED');
    return {
      headers: { 'x-test-step': 'first-was-here' },
      settle: (outcome) => void settled.set(marker, [...(settled.get(marker) ?? []), outcome]),
    };
  },
};
const second: AiCallStep = {
  name: 'test-second',
  order: 20,
  before: async (call) => {
    const marker = markerOf(call.body);
    ran.set(marker, [...(ran.get(marker) ?? []), 'second']);
    if (marker.startsWith('refuse-second')) throw new AppError('TEST_STEP_REFUSED', 'Refused by the second step.');
    return undefined;
  },
};

// Registered in the opposite order of `order`: the gateway sorts them.
const stepsTestModule = defineModule({
  ref: moduleRef<undefined>('steps-test'),
  dependsOn: [GATEWAY],
  create: () => ({
    api: undefined,
    feature: { id: 'steps-test', routes: [], errorCodes: { TEST_STEP_REFUSED: { status: 402, message: 'Refused by a test step.', doc: 'Test only.' } } },
    hooks: [hook(AI_CALL_STEPS, second), hook(AI_CALL_STEPS, first)],
  }),
});

let t: GatewayTestApp;
let key: string;
let limitedKey: string;

beforeAll(async () => {
  t = await startGatewayApp({
    modules: [...FEATURE_MODULES, stepsTestModule],
    overrides: { 'gateway.prices': [{ model: 'mock-model', inputPerMillion: '1', outputPerMillion: '2.5' }] },
  });
  const owner = await signUpUser(t.app, t.mail, 'steps-owner@example.com');
  const { org, ws } = await createOrgAndWorkspace(t, owner, 'Steps');
  key = (await createApiKey(t, owner, org, ws)).key;
  limitedKey = (await createApiKey(t, owner, org, ws, { monthlyLimit: 1 })).key;
});

afterAll(async () => {
  await t?.close();
});

const openai = (apiKey = key): OpenAI => new OpenAI({ apiKey, baseURL: `${t.url}/v1`, maxRetries: 0, timeout: 10_000 });
const chat = (marker: string, apiKey = key) => openai(apiKey).chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: marker }] });
const upstreamCallsWith = (marker: string): number => t.vendor.requests.filter((r) => JSON.stringify(r.body ?? null).includes(marker)).length;

/** The settles of `marker` once `count` arrived (settles run just after the answer is sent). Bounded by a count of polls. */
async function settlesOf(marker: string, count: number): Promise<(AiCallOutcome | undefined)[]> {
  for (let i = 0; i < 200 && (settled.get(marker)?.length ?? 0) < count; i++) await sleep(10);
  // One more turn, so that a second (wrong) settle would have landed too.
  await sleep(20);
  return settled.get(marker) ?? [];
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (err: unknown) => err,
  );
}

describe('AI call steps', () => {
  it('a step that throws an AppError refuses the call in the vendor\'s error shape with its status and code, and no upstream request is made', async () => {
    const err = await rejection(chat('refuse-first openai'));
    expect(err).toBeInstanceOf(OpenAIErrors.APIError);
    expect(err).toMatchObject({ status: 402, code: 'test_step_refused', type: 'invalid_request_error', error: { message: 'Refused by a test step.' } });
    expect(ran.get('refuse-first openai')).toEqual(['first']);
    expect(upstreamCallsWith('refuse-first openai')).toBe(0);

    const anthropic = new Anthropic({ apiKey: key, baseURL: t.url, maxRetries: 0, timeout: 10_000 });
    const aErr = await rejection(anthropic.messages.create({ model: 'mock-model', max_tokens: 10, messages: [{ role: 'user', content: 'refuse-first anthropic' }] }));
    expect(aErr).toBeInstanceOf(AnthropicErrors.APIError);
    expect(aErr).toMatchObject({ status: 402, error: { type: 'error', error: { type: 'invalid_request_error', message: 'Refused by a test step.' } } });
    expect(upstreamCallsWith('refuse-first anthropic')).toBe(0);
  });

  it('a step\'s settle gets the outcome with usage and cost after a successful call, exactly once, and its headers reach the client', async () => {
    const { data, response } = await openai().chat.completions.create({ model: 'mock-model', messages: [{ role: 'user', content: 'pass json' }] }).withResponse();
    expect(data.choices[0]?.message.content).toBeTruthy();
    expect(response.headers.get('x-test-step')).toBe('first-was-here');
    expect(ran.get('pass json')).toEqual(['first', 'second']);
    const outcomes = await settlesOf('pass json', 1);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({
      status: 200,
      model: 'mock-model',
      clientClosed: false,
      usage: { inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false },
    });
    // 17 input tokens at $1/M and 6 output tokens at $2.50/M: 17 + 15 micro-dollars.
    expect(outcomes[0]?.costMicroUsd).toBe(32);
    expect(outcomes[0]?.errorCode).toBeUndefined();
  });

  it('a stream\'s steps are settled once, after the stream, with the usage the stream reported; the step\'s headers come with the stream', async () => {
    const { data: stream, response } = await openai()
      .chat.completions.create({ model: 'mock-model', stream: true, messages: [{ role: 'user', content: 'pass stream' }] })
      .withResponse();
    expect(response.headers.get('x-test-step')).toBe('first-was-here');
    let text = '';
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
    expect(text.length).toBeGreaterThan(0);
    const outcomes = await settlesOf('pass stream', 1);
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 200, usage: { inputTokens: MOCK_PROMPT_TOKENS, outputTokens: MOCK_COMPLETION_TOKENS, estimated: false }, costMicroUsd: 32 });
  });

  it('when a later step refuses, the earlier step is settled once with undefined and nothing goes upstream', async () => {
    const err = await rejection(chat('refuse-second now'));
    expect(err).toMatchObject({ status: 402, code: 'test_step_refused', error: { message: 'Refused by the second step.' } });
    expect(ran.get('refuse-second now')).toEqual(['first', 'second']);
    expect(await settlesOf('refuse-second now', 1)).toEqual([undefined]);
    expect(upstreamCallsWith('refuse-second now')).toBe(0);
  });

  it('steps run before the monthly count: a refused call uses none of it, and a call the monthly limit refuses settles its steps with undefined', async () => {
    await rejection(chat('refuse-first limited', limitedKey));
    await chat('pass limited', limitedKey);
    expect(await settlesOf('pass limited', 1)).toHaveLength(1);
    const over = await rejection(chat('over limited', limitedKey));
    expect(over).toMatchObject({ status: 429, code: 'insufficient_quota' });
    expect(ran.get('over limited')).toEqual(['first', 'second']);
    expect(await settlesOf('over limited', 1)).toEqual([undefined]);
    expect(upstreamCallsWith('over limited')).toBe(0);
  });
});
