/**
 * One AI call from the route to the meter (GW-2..4): the key's workspace routing resolves the
 * model, the steps other features add (src/gateway/steps.ts, the AI_CALL_STEPS hook point) run,
 * the call is counted against the key's monthly limit, the proxy forwards it and writes the
 * answer, the meter records what came back, and every step that ran is settled exactly once.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { AppError } from '../server/errors.ts';
import type { WireFormat } from './adapters/index.ts';
import type { InflightCalls } from './inflight.ts';
import { credentialAllowsModel } from './credentials.ts';
import { GatewayError } from './errors.ts';
import { verifiedKeyOf } from './keys.ts';
import { HOPS_HEADER, nextHops } from './loop.ts';
import { monthAt, type Meter } from './metering.ts';
import type { LimitedKey } from './monthly-limit.ts';
import type { PriceTable } from './prices.ts';
import type { GatewayProxy } from './proxy.ts';
import { resolveTargets, type RoutableProvider, type Routing } from './routing.ts';
import { runStepsBefore, settleSteps, type AiCallOutcome, type AiCallStep, type AiOperation } from './steps.ts';
import { fromAppError, sendVendorError } from './vendor-errors.ts';

/** What an AI call needs of the gateway (a part of the feature's deps). */
export interface ForwardCallDeps {
  routing: Routing;
  meter: Meter;
  proxy: GatewayProxy;
  prices: PriceTable;
  /** The platform providers with their current keys (rebuilt when a reload changes the keys). */
  platform: () => readonly RoutableProvider[];
  /** Counts a call against the key's monthly limit; throws when it is over (createMonthlyLimit). */
  countMonthlyCall: (key: LimitedKey, now: number) => Promise<void>;
  /** The calls running now: stopped and awaited at shutdown. */
  inflight: InflightCalls;
  logger: Logger;
  now: () => number;
  /** This node's id in `x-gatehouse-hops` (src/gateway/loop.ts). */
  nodeId: string;
  /** The steps other features add around every AI call (src/gateway/steps.ts), in run order; read per call. */
  callSteps?: () => readonly AiCallStep[];
}

const OPERATIONS: Readonly<Record<string, AiOperation>> = { '/v1/chat/completions': 'chat', '/v1/embeddings': 'embeddings', '/v1/messages': 'messages' };

/**
 * The handler body shared by the AI routes.
 * @example const forwardCall = createForwardCall(deps); await forwardCall('openai', '/v1/chat/completions', request, reply, body, body.stream === true)
 */
export function createForwardCall(deps: ForwardCallDeps): (format: WireFormat, path: string, request: FastifyRequest, reply: FastifyReply, body: Record<string, unknown> & { model: string }, stream: boolean) => Promise<void> {
  const { routing, meter, proxy, prices, logger, now } = deps;

  /**
   * One AI call: resolve the model for the key's workspace, count it against the key's monthly
   * limit, then hand the response to the proxy and meter what came back. Everything that can
   * refuse the call runs before the reply is hijacked, so refusals take the one error path.
   */
  return async function forwardCall(
    format: WireFormat,
    path: string,
    request: FastifyRequest,
    reply: FastifyReply,
    body: Record<string, unknown> & { model: string },
    stream: boolean,
  ): Promise<void> {
    // First: a call that came back to this node must not cost a routing load, a monthly count or a call.
    const hops = nextHops(request.headers[HOPS_HEADER], deps.nodeId);
    const key = verifiedKeyOf(request);
    // A client token that names its models calls only those (the name asked for: a model or an alias).
    if (!credentialAllowsModel(key.delegation, body.model)) throw new GatewayError('CREDENTIAL_MODEL_NOT_ALLOWED', `This token may not call the model '${body.model}'.`);
    const workspace = await routing.load(key.tenantId, key.workspaceId);
    const { targets, labels } = resolveTargets(workspace, deps.platform(), format, body.model);
    const started = now();
    const onSettleError = (step: string, err: unknown): void => logger.error({ err, step, requestId: request.id }, 'settling an AI call step failed');
    // Steps of other features (input guard, budgets) may refuse the call; each that ran is settled once.
    const steps = deps.callSteps?.() ?? [];
    const aiCall = { requestId: request.id, format, operation: OPERATIONS[path] ?? 'chat', tenantId: key.tenantId, workspaceId: key.workspaceId, apiKeyId: key.id, model: body.model, stream, body, startedAt: started };
    const { pending, headers } = steps.length > 0 ? await runStepsBefore(steps, aiCall, onSettleError) : { pending: [], headers: {} };
    let outcome: AiCallOutcome | undefined;
    try {
      await deps.countMonthlyCall(key, started);
    } catch (err) {
      await settleSteps(pending, undefined, onSettleError);
      throw err;
    }
    for (const [name, value] of Object.entries(headers)) void reply.header(name, value);

    // The proxy writes the raw response: headers set so far (security, rate limit, request id) go with it.
    const raw = reply.raw;
    for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) raw.setHeader(name, typeof value === 'number' ? String(value) : value);
    reply.hijack();
    // Registered until metered: shutdown stops it with an answer in the client's format, and waits
    // for it before the meter's last write.
    const call = deps.inflight.begin(key.id, monthAt(started).month, raw, key.delegation?.subject ?? null);
    try {
      const result = await proxy.forward({ format, path, body: aiCall.body, stream, targets, requestId: request.id, hops, signal: call.signal }, raw);
      let cost: number | null = null;
      try {
        cost = prices.costOf(result.model, result.usage);
      } catch (err) {
        logger.error({ err, model: result.model }, 'cost out of range: metered without cost');
      }
      meter.record({
        tenantId: key.tenantId,
        workspaceId: key.workspaceId,
        apiKeyId: key.id,
        subject: key.delegation?.subject ?? null,
        provider: labels.get(result.providerId) ?? result.providerId,
        model: result.model,
        inputTokens: result.usage.inputTokens,
        outputTokens: result.usage.outputTokens,
        estimated: result.usage.estimated,
        costMicroUsd: cost,
        status: result.status,
        errorCode: result.errorCode ?? null,
        durationMs: result.upstreamMs,
        at: new Date(started),
      });
      outcome = { status: result.status, usage: result.usage, costMicroUsd: cost, model: result.model, clientClosed: result.clientClosed, ...(result.errorCode ? { errorCode: result.errorCode } : {}) };
      if (result.error && result.status >= 500) {
        // The error's cause holds the network error (host and port, never a key); it is scrubbed like every log line.
        logger.warn({ requestId: request.id, code: result.errorCode, provider: labels.get(result.providerId), attempts: result.attempts, err: result.error }, 'gateway call failed');
      }
    } catch (err) {
      // Only a bug lands here (the proxy answers upstream failures itself); the client still gets an answer.
      logger.error({ err, requestId: request.id }, 'gateway call failed unexpectedly');
      sendVendorError(raw, format, fromAppError(new AppError('INTERNAL'), request.id));
    } finally {
      await settleSteps(pending, outcome, onSettleError);
      call.end();
    }
  };
}
