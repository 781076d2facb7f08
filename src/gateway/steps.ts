/**
 * Steps that run around every AI call, before the upstream attempt and after the answer: the
 * places where other features (the input guard, budgets) take part in a call without the gateway
 * knowing them. A step is registered through the gateway's `AI_CALL_STEPS` hook point
 * (src/gateway/index.ts); the gateway runs the steps in ascending `order`.
 *
 * Contract:
 * - `before` runs after the key, the workspace's routing and the model were resolved, and before
 *   the monthly count and the upstream call. Throwing refuses the call: the error is rendered in
 *   the client's vendor format (an `AppError` with a registered code keeps its status and code).
 *   No later step's `before` runs then.
 * - A step may change `call.body` (e.g. redaction); what it leaves there is what goes upstream.
 * - `before` may return a `settle` callback: it is called exactly once for every step whose
 *   `before` returned one, after the call ends: with the outcome when the call reached the proxy,
 *   with `undefined` when a later step or check refused the call before any upstream attempt.
 *   A settle that throws is logged; it never changes the client's answer (which is sent by then).
 * - `headers` are added to the response (e.g. a budget's soft-limit warning).
 */
import type { Usage, WireFormat } from './usage.ts';

/** Which AI operation a call is. */
export type AiOperation = 'chat' | 'embeddings' | 'messages';

/** One AI call, as the steps see it. */
export interface AiCall {
  requestId: string;
  format: WireFormat;
  operation: AiOperation;
  /** The org. */
  tenantId: string;
  workspaceId: string;
  apiKeyId: string;
  /** The model the client asked for (before aliases). */
  model: string;
  stream: boolean;
  /** The parsed request body; a step may rewrite it. */
  body: Record<string, unknown>;
  /** ms. */
  startedAt: number;
}

/** How a call that reached the proxy ended. */
export interface AiCallOutcome {
  /** The status sent to the client (499 when the client left before an answer started). */
  status: number;
  /** Tokens used: from the vendor's usage, or estimated from what was delivered. */
  usage: Usage;
  /** Integer micro-dollars from the price table; null when the model has no price. */
  costMicroUsd: number | null;
  /** The model the provider was asked for (after aliases). */
  model: string;
  errorCode?: string;
  clientClosed: boolean;
}

export interface AiCallStepResult {
  settle?: (outcome: AiCallOutcome | undefined) => Promise<void> | void;
  headers?: Readonly<Record<string, string>>;
}

export interface AiCallStep {
  /** A short name for logs. */
  name: string;
  /** Lower runs first; the input guard uses 100, budgets 200. */
  order: number;
  before: (call: AiCall) => Promise<AiCallStepResult | undefined | void>;
}

/** A call's settle callbacks, in the order their steps ran. */
export type PendingSettles = Array<{ step: string; settle: NonNullable<AiCallStepResult['settle']> }>;

/**
 * Runs the steps' `before` in order. On a refusal, settles the steps that already ran with
 * `undefined` (nothing was used) and rethrows.
 */
export async function runStepsBefore(steps: readonly AiCallStep[], call: AiCall, onSettleError: (step: string, err: unknown) => void): Promise<{ pending: PendingSettles; headers: Record<string, string> }> {
  const pending: PendingSettles = [];
  const headers: Record<string, string> = {};
  try {
    for (const step of steps) {
      const result = await step.before(call);
      if (!result) continue;
      if (result.settle) pending.push({ step: step.name, settle: result.settle });
      if (result.headers) Object.assign(headers, result.headers);
    }
  } catch (err) {
    await settleSteps(pending, undefined, onSettleError);
    throw err;
  }
  return { pending, headers };
}

/** Calls every pending settle once, in order; errors go to `onError` and never stop the others. */
export async function settleSteps(pending: PendingSettles, outcome: AiCallOutcome | undefined, onError: (step: string, err: unknown) => void): Promise<void> {
  for (const { step, settle } of pending.splice(0)) {
    try {
      await settle(outcome);
    } catch (err) {
      onError(step, err);
    }
  }
}

/** Sorts steps by `order` (stable), the order the gateway runs them in. */
export function orderSteps(steps: readonly AiCallStep[]): AiCallStep[] {
  return [...steps].sort((a, b) => a.order - b.order);
}
