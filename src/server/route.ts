/**
 * What a route must declare: method, path, guard, rate category, schemas and a handler.
 * Features are plain objects listing their routes; the server registers them and refuses to
 * start when one lacks a declaration (see validateRoute).
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { LiveConfig } from '../config/live.ts';
import type { Config, RateCategory } from '../config/schema.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { ErrorCodeInfo } from './error-codes.ts';

/** Who a guard let through. */
export interface Principal {
  kind: 'user' | 'apiKey' | 'service' | 'webhook';
  id: string;
  /** The session of a signed-in user. */
  sessionId?: string;
  /** Tenant the principal acts in, when the guard knows it (API keys). */
  tenantId?: string;
  /** Workspace the principal is confined to (API keys). */
  workspaceId?: string;
  scopes?: readonly string[];
  /** The principal's own rate limit, replacing the route category's per-principal one (an API key's limit). */
  rateLimit?: { limit: number; windowSeconds: number };
  /**
   * What the per-principal rate limit is counted under when not `kind:id`: a client token's
   * subject (an end user or a bot), so every token of one subject shares one window.
   */
  rateKey?: string;
}

/**
 * What the authorizer found for a route that declares a permission: the tenant the request acts
 * in and the caller's current role there (read from the database, never from a token claim).
 */
export interface Authority {
  /** The org (tenant) id; undefined for platform permissions. */
  tenantId?: string;
  /** The caller's role in the org (or, on a workspace route, the effective workspace role). */
  role?: string;
  /** The caller's org role, before any workspace narrowing. */
  orgRole?: string;
  workspaceId?: string;
}

export type GuardSpec =
  | { kind: 'public' }
  | { kind: 'session' }
  | { kind: 'apiKey'; scope: string }
  | { kind: 'webhook'; provider: string }
  | { kind: 'cron' }
  | { kind: 'metrics' };

export type GuardKind = GuardSpec['kind'];

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';

export interface RouteSchemas {
  params?: z.ZodType;
  querystring?: z.ZodType;
  body?: z.ZodType;
  headers?: z.ZodType;
  /** Success responses by status; error envelopes are added for every route. */
  response: Record<number, z.ZodType>;
}

/** Services every handler can reach. Core services only: features bring their own. */
export interface Services {
  /** The configuration the node started with; reloadable options are read from `live`. */
  config: Config;
  live: LiveConfig;
  db: Db;
  kv: Kv;
  logger: Logger;
  metrics: Registry;
  startedAt: Date;
  now: () => number;
  /** Envelope encryption: every stored secret is sealed through it. */
  keyring: Keyring;
  /** Ed25519 keys for access tokens and audit checkpoints. */
  signingKeys: SigningKeys;
}

export interface HandlerContext<Params, Query, Body> {
  params: Params;
  query: Query;
  body: Body;
  request: FastifyRequest;
  reply: FastifyReply;
  services: Services;
  principal: Principal | undefined;
  /** Set when the route declares a permission: the tenant and role the authorizer checked. */
  authority: Authority | undefined;
}

/** An error as a route's own error format renders it. */
export interface RenderableError {
  status: number;
  /** The Gatehouse error code (UPPER_SNAKE). */
  code: string;
  /** The client-safe message (already generic for a 5xx). */
  message: string;
  requestId: string;
  /** Headers the error carries, e.g. `retry-after`. */
  headers: Readonly<Record<string, string>>;
}

/**
 * Errors in another API's shape, for routes whose clients are that API's SDKs (the AI gateway's
 * OpenAI- and Anthropic-compatible routes). The one error handler renders every error of such a
 * route with it: guard refusals, rate limits, body and validation errors, thrown errors.
 */
export interface ErrorFormat {
  /** A short name for the route table, e.g. `openai`. */
  name: string;
  /** The error body's schema (OpenAPI, response serialization). */
  schema: z.ZodType;
  render: (error: RenderableError) => { body: unknown; headers?: Record<string, string> };
}

export interface RouteDef<S extends RouteSchemas = RouteSchemas> {
  method: HttpMethod;
  url: string;
  summary: string;
  guard: GuardSpec;
  /** Permission the principal needs (tenancy's matrix), or null when the guard alone decides. */
  permission: string | null;
  rateCategory: RateCategory;
  schema: S;
  /** Overrides server.bodyLimitBytes for this route. */
  bodyLimit?: number;
  /**
   * Keeps the exact body bytes as `request.rawBody` (a Buffer) beside the parsed JSON, for a
   * signature over the bytes as sent (an HMAC). Within the same body limit; routes without it
   * keep no copy.
   */
  rawBody?: true;
  /**
   * Takes `application/x-www-form-urlencoded` bodies (parsed to a record of strings) besides JSON:
   * only for protocols that require a form post (SAML HTTP-POST binding, OAuth token endpoints).
   */
  formBody?: true;
  /** Hidden from OpenAPI (never from the guard table). */
  hidden?: boolean;
  /**
   * Not counted against any rate limit: for a liveness probe, which must answer from this
   * process alone (counting it in the counter store would make liveness depend on Redis).
   * Only a public route that touches no store may set it.
   */
  unmetered?: true;
  /** Renders this route's errors in another shape instead of the Gatehouse envelope. */
  errorFormat?: ErrorFormat;
  /**
   * `any-origin`: CORS preflights and responses of this route are allowed for every origin,
   * without credentials (cookies); whether a browser origin may call is decided by the guard's
   * verifier from the credential presented (a client token's allowed origins). Only for routes
   * whose credential is a header (apiKey guard) and whose URL has no parameters.
   */
  cors?: 'any-origin';
  /**
   * The budget categories (ABUSE-2) every call of this route consumes, for the guard table; the
   * budgets feature's tests prove each declared route consumes them, whoever calls it.
   */
  budgets?: readonly string[];
  handler: (
    ctx: HandlerContext<
      S['params'] extends z.ZodType ? z.output<S['params']> : Record<string, never>,
      S['querystring'] extends z.ZodType ? z.output<S['querystring']> : Record<string, never>,
      S['body'] extends z.ZodType ? z.output<S['body']> : undefined
    >,
  ) => Promise<unknown>;
}

/** Type helper so handlers see their schemas' types. */
export function defineRoute<S extends RouteSchemas>(route: RouteDef<S>): RouteDef<S> {
  return route;
}

/**
 * A column that holds values sealed by the keyring (DATA-2). Declared by the feature that owns
 * the table; the registry scan test and `keys rotate dek` find sealed values through these.
 */
export interface SealedColumn {
  table: string;
  column: string;
  /** Primary key column, used as the row id bound into each ciphertext. */
  idColumn: string;
  /** Column holding the tenant id, or null for platform rows (sealed under the platform key). */
  tenantColumn: string | null;
  /** Column holding the user id when values are sealed under that user's personal-data key. */
  subjectColumn?: string;
}

/** A feature: a plain object listed in src/features.ts. */
export interface Feature {
  id: string;
  routes: RouteDef[];
  sealedColumns?: readonly SealedColumn[];
  errorCodes?: Record<string, ErrorCodeInfo>;
}

/** Credential checks that features provide to the guards (identity, keys, webhooks). */
export interface Verifiers {
  session?: (token: string, request: FastifyRequest) => Promise<Principal | null>;
  apiKey?: (key: string, scope: string, request: FastifyRequest) => Promise<Principal | null>;
  webhook?: Record<string, (request: FastifyRequest) => Promise<Principal | null>>;
  /**
   * Checks a route's declared permission for the principal, with the raw path parameters
   * (`:org`, `:ws`) before schema validation. Throws NOT_FOUND when the caller is not a member
   * of the org (or the workspace is not in it), FORBIDDEN when the role lacks the permission.
   */
  authorize?: (principal: Principal, permission: string, params: Readonly<Record<string, string | undefined>>, request: FastifyRequest) => Promise<Authority>;
}

const BODY_METHODS = new Set<HttpMethod>(['POST', 'PUT', 'PATCH']);

/** Returns why a route may not be served, or null. The server refuses to start on any. */
export function validateRoute(route: Partial<RouteDef> & { method?: string; url?: string }): string | null {
  const name = `${route.method ?? '?'} ${route.url ?? '?'}`;
  if (!route.guard || typeof route.guard !== 'object' || !('kind' in route.guard)) return `route ${name} declares no guard`;
  if (route.permission === undefined) return `route ${name} declares no permission (use null when the guard alone decides)`;
  if (!route.rateCategory) return `route ${name} declares no rate category`;
  if (!route.schema || !route.schema.response || Object.keys(route.schema.response).length === 0) {
    return `route ${name} declares no response schema`;
  }
  if (route.method && BODY_METHODS.has(route.method as HttpMethod) && !route.schema.body) {
    return `route ${name} declares no body schema`;
  }
  if (route.rawBody && !(route.method && BODY_METHODS.has(route.method as HttpMethod))) return `route ${name} keeps a raw body but takes none`;
  if (route.formBody && !(route.method && BODY_METHODS.has(route.method as HttpMethod))) return `route ${name} takes a form body but no body`;
  if (route.url?.includes(':') && !route.schema.params) return `route ${name} declares no params schema`;
  if (route.guard.kind === 'public' && route.permission !== null) return `route ${name} is public but declares a permission`;
  if (route.unmetered && (route.guard.kind !== 'public' || route.method !== 'GET')) return `route ${name} is unmetered but not a public GET`;
  if (route.cors === 'any-origin' && (route.guard.kind !== 'apiKey' || route.url?.includes(':'))) return `route ${name} opens CORS to any origin but is not a parameterless apiKey route`;
  return null;
}
