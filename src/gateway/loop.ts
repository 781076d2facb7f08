/**
 * Refuses call loops: a provider whose base URL leads back to Gatehouse (this node, another node of
 * the same deployment behind a load balancer, or a chain of them) would turn one call into a
 * cascade of nested calls, each with its own retries.
 *
 * Every upstream call carries `x-gatehouse-hops`: the ids of the Gatehouse nodes the call already
 * went through, this one last. An AI route that receives a call whose hops name this node (a loop),
 * or name more than `MAX_HOPS` nodes (a chain too long to be intended), refuses it with
 * GATEWAY_LOOP_DETECTED and `x-gatehouse-loop: 1`. The calling node sees that header on the answer
 * and gives up on that target at once: no retry, no breaker failure, so a loop costs exactly one
 * refused call. A client may send the header itself; it can only get its own call refused.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from './errors.ts';

/** The request header listing the Gatehouse nodes a call went through. */
export const HOPS_HEADER = 'x-gatehouse-hops';
/** The response header of a refused loop, which the calling Gatehouse recognises. */
export const LOOP_HEADER = 'x-gatehouse-loop';
/** Most Gatehouse nodes one call may pass through before it is refused. */
export const MAX_HOPS = 8;

const NODE_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** A fresh id for this node: random, so no two processes share one. */
export function newNodeId(): string {
  return randomBytes(9).toString('base64url');
}

/** The refusal a looping call gets. */
export function loopDetected(): GatewayError {
  return new GatewayError('GATEWAY_LOOP_DETECTED', undefined, { headers: { [LOOP_HEADER]: '1' } });
}

/**
 * The hops to send upstream for a call that arrived with `header`: its hops, then `nodeId`. Throws
 * GATEWAY_LOOP_DETECTED when the call already passed through this node or too many nodes.
 * @example const hops = nextHops(request.headers['x-gatehouse-hops'], nodeId)
 */
export function nextHops(header: string | string[] | undefined, nodeId: string): string[] {
  const text = Array.isArray(header) ? header.join(',') : (header ?? '');
  const hops = text
    .split(',')
    .map((h) => h.trim())
    .filter((h) => h.length > 0);
  if (hops.includes(nodeId) || hops.length >= MAX_HOPS) throw loopDetected();
  // Ids we did not make are kept only when they look like ours: the header is sent on as given.
  return [...hops.filter((h) => NODE_ID.test(h)), nodeId];
}

/** True when an upstream answer is another Gatehouse refusing a loop. */
export function isLoopAnswer(headers: Record<string, string | string[] | undefined>): boolean {
  return headers[LOOP_HEADER] !== undefined;
}
