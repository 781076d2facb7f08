/**
 * Error codes of the AI gateway, in the shape of src/server/error-codes.ts. The gateway feature
 * declares them (`Feature.errorCodes`); src/gateway/errors.ts also registers them on import so that
 * a `GatewayError` can always be built.
 *
 * Upstream failures are 5xx and, like every 5xx, tell the client only what kind of failure it was:
 * never the provider's host, address, key or raw answer.
 */
import type { ErrorCodeInfo } from '../server/error-codes.ts';

export const GATEWAY_ERROR_CODES = {
  UPSTREAM_HOST_NOT_ALLOWED: {
    status: 502,
    message: 'The AI provider cannot be reached from this gateway.',
    doc: 'The provider\'s base URL names a host that is not on `gateway.upstream.allowedHosts`. An operator must add the host (or a `*.suffix` pattern) or fix the provider\'s URL. Not retried.',
  },
  UPSTREAM_PORT_NOT_ALLOWED: {
    status: 502,
    message: 'The AI provider cannot be reached from this gateway.',
    doc: 'The provider\'s base URL names an allowed host but a port its `gateway.upstream.allowedHosts` entry does not allow (an entry without a port allows only 443 for https, 80 for http). An operator must add `host:port` or fix the provider\'s URL. Not retried.',
  },
  UPSTREAM_ADDRESS_NOT_ALLOWED: {
    status: 502,
    message: 'The AI provider cannot be reached from this gateway.',
    doc: 'The provider\'s host resolved to a loopback, private, link-local, CGNAT, multicast or otherwise reserved address (SSRF and DNS-rebinding defence). An operator may allow specific ranges with `gateway.upstream.allowedCidrs`. Not retried.',
  },
  UPSTREAM_SCHEME_NOT_ALLOWED: {
    status: 502,
    message: 'The AI provider cannot be reached from this gateway.',
    doc: 'The provider\'s base URL uses plain `http:` (vendor keys would cross the network in clear) and `gateway.upstream.allowInsecureHttp` is off. Not retried.',
  },
  UPSTREAM_AUTH_FAILED: {
    status: 502,
    message: 'The AI provider refused the gateway\'s credentials.',
    doc: 'The provider answered 401 or 403 to the vendor key Gatehouse holds for it: the key is wrong, revoked or lacks access. Your own API key was accepted; an operator or workspace admin must fix the vendor key. Not retried.',
  },
  UPSTREAM_ERROR: {
    status: 502,
    message: 'The AI provider failed to answer.',
    doc: 'The connection to the provider failed or broke, or the provider answered with a server error, after the configured retries and fallbacks. For a stream that already started, the stream ends with an error event instead.',
  },
  UPSTREAM_RATE_LIMITED: {
    status: 429,
    message: 'The AI provider is rate limiting the gateway; retry later.',
    doc: 'The provider answered 429 to the gateway after the configured retries and fallbacks. `Retry-After` repeats the provider\'s hint when it gave one. The provider\'s own message is not passed on: it can name the platform\'s account with the provider.',
  },
  UPSTREAM_UNAVAILABLE: {
    status: 503,
    message: 'The AI provider is unavailable; retry later.',
    doc: 'The circuit breaker for the provider is open after repeated failures, so the gateway fails fast instead of waiting. `Retry-After` gives seconds until the breaker lets a probe through.',
  },
  UPSTREAM_TIMEOUT: {
    status: 504,
    message: 'The AI provider did not answer in time.',
    doc: 'Connecting, the first byte of the answer, a pause inside a stream, or the whole exchange took longer than `gateway.timeouts` allow.',
  },
  GATEWAY_LOOP_DETECTED: {
    status: 508,
    message: 'The call came back to this gateway: a provider points at Gatehouse itself.',
    doc: 'A provider\'s base URL leads back to Gatehouse (this node, another node of the deployment, or a chain of more than 8 Gatehouse nodes). The looping call is refused once, by the node it came back to, and the first node answers the client with this code instead of retrying. Fix the provider\'s base URL. Not retried.',
  },
  NO_PROVIDER_CONFIGURED: {
    status: 404,
    message: 'No AI provider is configured for this workspace: an operator must set GATEHOUSE_GATEWAY_PROVIDERS (with GATEHOUSE_GATEWAY_PROVIDER_KEYS), or a workspace admin must add a provider.',
    doc: 'Neither the platform (`gateway.providers`) nor the key\'s workspace (`/v1/orgs/:org/workspaces/:ws/providers`) has any provider, so no model can be called or listed. Distinct from MODEL_NOT_FOUND so a new installation says what is missing. Not retried.',
  },
  NODE_SHUTTING_DOWN: {
    status: 503,
    message: 'This gateway node is shutting down; retry the call.',
    doc: 'The node was stopped while the call was running and the call outlived `server.shutdownGraceMs`. A JSON call not yet answered gets this with `Retry-After`; a stream that already started ends with an error event carrying this code. What the call used up to then is metered.',
  },
  MODEL_NOT_FOUND: {
    status: 404,
    message: 'The model does not exist or you do not have access to it.',
    doc: 'The requested model (or workspace alias) is not configured for this workspace. Declared for the gateway routes.',
  },
  MONTHLY_LIMIT_REACHED: {
    status: 429,
    message: 'The monthly call limit of this API key is reached.',
    doc: 'The API key\'s monthly call limit, or the one a client token sets for its subject (GW-6), is used up; `Retry-After` gives seconds until the next month starts (UTC). Declared for the gateway routes.',
  },
  GATEWAY_LIMIT_REACHED: {
    status: 409,
    message: 'A limit was reached.',
    doc: 'Too many unrevoked API keys in a workspace (`gateway.maxKeysPerWorkspace`), or too many provider credentials in a workspace (20).',
  },
  CREDENTIAL_MODEL_NOT_ALLOWED: {
    status: 403,
    message: 'This credential may not call this model.',
    doc: 'The client token names the models it may call (`models` when minted, GW-6) and the requested model (or alias) is not one of them. Mint a token that names it.',
  },
  ORIGIN_NOT_ALLOWED: {
    status: 403,
    message: 'This credential may not be used from this origin.',
    doc: 'An AI route was called from a browser page (an `Origin` header) whose origin the credential does not allow: a client token only from the `allowedOrigins` it was minted with, an API key only from `cors.origins` (API keys are not for browsers: mint a client token, GW-6).',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type GatewayErrorCode = keyof typeof GATEWAY_ERROR_CODES;
