/**
 * What a crash of the embedded node loses of its metering (GW-4): the real `gatehouse start` in a
 * child process, killed with SIGKILL after acknowledged calls, its data directory opened again.
 *
 * The documented bound (README "Metering", docs/controls.md GW-4): usage is written by a flush every
 * `gateway.usageFlushMs`; a crash loses the calls recorded since the last flush that committed, i.e.
 * calls acknowledged within about one flush interval (plus the flush's own duration) before the
 * crash, and calls still running. Everything a completed flush wrote survives.
 *
 * Checked two ways: by work (every call before an on-demand flush, the usage report's, survives),
 * and by time with a generous margin (a lost call was acknowledged less than
 * `usageFlushMs + MARGIN_MS` before the kill; the margin absorbs a flush delayed on a busy machine).
 */
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MailMessage } from '../../src/identity/mailer.ts';
import type { TestApp } from '../support/app.ts';
import { embeddedSetup, recordedCalls, spawnEmbeddedNode, startEmbeddedNode, type EmbeddedSetup, type SpawnedNode } from '../support/embedded-gateway.ts';
import { createApiKey, createOrgAndWorkspace, VENDOR_KEYS } from '../support/gateway.ts';
import { startMockVendor, type MockVendor } from '../support/mock-vendor.ts';
import { signUpUser } from '../support/users.ts';

const FLUSH_MS = 250;
/** Generous: a flush that started on time but waited for a busy event loop or disk. */
const MARGIN_MS = 1_500;
const BEFORE_FLUSH = 20;
const AFTER_FLUSH = 121;
const PACE_MS = 30;
const messages = [{ role: 'user' as const, content: 'Say hello.' }];

let vendor: MockVendor;
let setup: EmbeddedSetup;
let child: SpawnedNode | undefined;

beforeAll(async () => {
  vendor = await startMockVendor({ openaiKey: VENDOR_KEYS.openai, anthropicKey: VENDOR_KEYS.anthropic });
  setup = embeddedSetup(vendor.url, { 'gateway.usageFlushMs': FLUSH_MS });
});

afterAll(async () => {
  if (child && child.child.exitCode === null) child.child.kill('SIGKILL');
  await vendor?.close();
  setup?.remove();
});

describe('a crash (SIGKILL) of the embedded node', () => {
  it('loses at most the calls acknowledged within one usage flush interval before it; everything flushed survives', async () => {
    // Org, workspace and key made on a first, in-process start of the data directory.
    const mail: MailMessage[] = [];
    const first = await startEmbeddedNode(setup, mail);
    const owner = await signUpUser(first.node.app, mail, 'crash-owner@example.com');
    const { org, ws } = await createOrgAndWorkspace({ app: first.node.app } as TestApp, owner, 'Crash');
    const { key, id } = await createApiKey({ app: first.node.app } as TestApp, owner, org, ws);
    await first.close();

    child = await spawnEmbeddedNode(setup);
    const openai = new OpenAI({ apiKey: key, baseURL: `${child.url}/v1`, maxRetries: 0, timeout: 10_000 });

    // By work: the usage report flushes the node's buffer before it reads.
    for (let i = 0; i < BEFORE_FLUSH; i++) await openai.chat.completions.create({ model: 'mock-model', messages });
    const report = await fetch(`${child.url}/v1/orgs/${org}/usage`, { headers: owner.auth });
    expect(report.status).toBe(200);
    const reported = ((await report.json()) as { keys: { keyId: string; requests: number }[] }).keys.find((k) => k.keyId === id);
    expect(reported?.requests).toBe(BEFORE_FLUSH);

    // By time: calls acknowledged one after another, each one's time noted, then the kill. Paced so
    // that the calls span several times the bound: otherwise no loss could exceed it.
    const acknowledgedAt: number[] = [];
    for (let i = 0; i < AFTER_FLUSH - 1; i++) {
      await openai.chat.completions.create({ model: 'mock-model', messages });
      acknowledgedAt.push(performance.now());
      await new Promise((resolve) => setTimeout(resolve, PACE_MS));
    }
    // The last call is acknowledged just before the kill, not a pause later.
    await openai.chat.completions.create({ model: 'mock-model', messages });
    acknowledgedAt.push(performance.now());
    const exited = child.exited;
    child.child.kill('SIGKILL');
    const killedAt = performance.now();
    await exited;

    const { requests } = await recordedCalls(setup, org, id);
    const lost = BEFORE_FLUSH + AFTER_FLUSH - requests;
    expect(requests).toBeGreaterThanOrEqual(BEFORE_FLUSH);
    expect(lost).toBeGreaterThanOrEqual(0);
    // Calls are recorded and flushed in order: the lost ones are the last `lost` acknowledged.
    const oldestLost = acknowledgedAt[AFTER_FLUSH - lost];
    const lostWindowMs = oldestLost === undefined ? 0 : killedAt - oldestLost;
    console.info(`crash after ${BEFORE_FLUSH + AFTER_FLUSH} acknowledged calls: ${lost} lost, acknowledged within the last ${Math.round(lostWindowMs)} ms (usageFlushMs ${FLUSH_MS})`);
    expect(lostWindowMs).toBeLessThanOrEqual(FLUSH_MS + MARGIN_MS);
  });
});
