/**
 * Builds the HTTP server: the edge (headers, CORS, body parsing, rate limits, request ids),
 * the one error path, declared guards, OpenAPI, and every feature's routes.
 *
 * The error path (error envelope, 404/405) is in app-errors.ts.
 */
import { randomUUID } from 'node:crypto';
import cookie from '@fastify/cookie';
import swagger from '@fastify/swagger';
import Fastify, { LogController, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { jsonSchemaTransform, serializerCompiler } from 'fastify-type-provider-zod';
import FindMyWay from 'find-my-way';
import type { Logger } from 'pino';
import { z } from 'zod';
import { createLiveConfig, type LiveConfig } from '../config/live.ts';
import type { Config, RateCategory } from '../config/schema.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import { openCorsPaths, registerCors } from './edge/cors.ts';
import { registerDocsUi } from './edge/docs-ui.ts';
import { registerSecurityHeaders } from './edge/headers.ts';
import { registerFormBodyParser } from './edge/form-body.ts';
import { registerJsonBodyParser } from './edge/json-body.ts';
import { keepRawBody } from './edge/raw-body.ts';
import { httpsOptions } from './edge/tls.ts';
import { validatorCompiler } from './edge/validation.ts';
import { mapFrameworkError, registerErrorPath, sendError } from './app-errors.ts';
import { AppError, registerErrorCodes } from './errors.ts';

export { UNAVAILABLE_RETRY_AFTER_SECONDS } from './app-errors.ts';
import { GUARDS } from './guards/index.ts';
import { createHttpMetrics, type HttpMetrics } from './metrics.ts';
import { enforceRateLimit, type RateLimiterDeps } from './rate-limit.ts';
import { runWithRequest } from './request-context.ts';
import {
  validateRoute,
  type Authority,
  type ErrorFormat,
  type Feature,
  type GuardSpec,
  type Principal,
  type RouteDef,
  type Services,
  type Verifiers,
} from './route.ts';

/** What the route table records for every registered route (docs/guards.md, guard tests). */
export interface RouteMeta {
  method: string;
  url: string;
  guard: GuardSpec;
  permission: string | null;
  rateCategory: RateCategory;
  summary: string;
  hasBody: boolean;
  feature: string;
  /** Set when the route renders its errors in another API's shape. */
  errorFormat?: ErrorFormat;
  /** Not counted against any rate limit (the liveness probe). */
  unmetered?: true;
  /** Budget categories the route consumes (ABUSE-2). */
  budgets?: readonly string[];
  /** CORS open to any origin (the guard decides per credential). */
  cors?: 'any-origin';
  formBody?: true; // takes form-encoded bodies (edge/form-body.ts)
}

declare module 'fastify' {
  interface FastifyContextConfig {
    gatehouse?: RouteMeta;
  }
  interface FastifyRequest {
    principal: Principal | undefined;
    authority: Authority | undefined;
    /** The exact body bytes, only on routes that declare `rawBody: true` (edge/raw-body.ts). */
    rawBody: Buffer | undefined;
  }
  interface FastifyInstance {
    gatehouse: { services: Services; routes: RouteMeta[]; metrics: HttpMetrics; verifiers: Verifiers };
  }
}

export interface BuildAppOptions {
  config: Config;
  /** The live configuration (reloads); by default one that never changes. */
  live?: LiveConfig;
  db: Db;
  kv: Kv;
  logger: Logger;
  keyring: Keyring;
  signingKeys: SigningKeys;
  features: readonly Feature[];
  verifiers?: Verifiers;
  now?: () => number;
  startedAt?: Date;
  /** Collect process metrics (off in tests, where many servers share one process). */
  defaultMetrics?: boolean;
}

export const errorEnvelopeSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), requestId: z.string() }),
});

const GUARD_DESCRIPTIONS: Record<GuardSpec['kind'], (g: GuardSpec) => string> = {
  public: () => 'public',
  session: () => 'session',
  apiKey: (g) => `apiKey (scope ${(g as { scope: string }).scope})`,
  webhook: (g) => `webhook (${(g as { provider: string }).provider})`,
  cron: () => 'cron secret',
  metrics: () => 'metrics token',
};

/** Human-readable guard, as shown in OpenAPI and docs/guards.md. */
export function describeGuard(guard: GuardSpec): string {
  return GUARD_DESCRIPTIONS[guard.kind](guard);
}

const SECURITY_SCHEME: Record<GuardSpec['kind'], string | null> = {
  public: null,
  session: 'session',
  apiKey: 'apiKey',
  webhook: null,
  cron: 'cronSecret',
  metrics: 'metricsToken',
};

/** Throws, naming the first route that lacks a declaration; called before anything is opened. */
export function assertRoutesDeclared(features: readonly Feature[]): void {
  for (const feature of features) {
    for (const route of feature.routes) {
      const problem = validateRoute(route);
      if (problem) throw new Error(`refusing to start: ${problem} (feature ${feature.id})`);
    }
  }
}

/**
 * Builds a ready-to-listen server. Refuses (throws naming the route) when a route lacks a guard,
 * a permission declaration, a rate category or schemas.
 * @example const app = await buildApp({ config, db, kv, logger, features: FEATURES });
 */
export async function buildApp(options: BuildAppOptions): Promise<FastifyInstance> {
  const { config, db, kv, logger } = options;
  const live = options.live ?? createLiveConfig(config);
  assertRoutesDeclared(options.features);
  const now = options.now ?? Date.now;
  const tls = httpsOptions(config);
  const metrics = createHttpMetrics({ defaultMetrics: options.defaultMetrics ?? false });
  const services: Services = {
    config,
    live,
    db,
    kv,
    logger,
    metrics: metrics.registry,
    keyring: options.keyring,
    signingKeys: options.signingKeys,
    startedAt: options.startedAt ?? new Date(now()),
    now,
  };
  const verifiers = options.verifiers ?? {};

  const app = Fastify({
    loggerInstance: logger,
    // One line per request is written in onResponse, with the route pattern and timing.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    genReqId: () => randomUUID(),
    trustProxy: config.server.trustedProxies.length > 0 ? [...config.server.trustedProxies] : false,
    bodyLimit: config.server.bodyLimitBytes,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    routerOptions: { maxParamLength: 200 },
    ...(tls ? { https: tls } : {}),
    frameworkErrors: (err, request, reply) => {
      const mapped = mapFrameworkError(err);
      void sendError(request, reply, mapped.code, mapped.message);
    },
  }) as unknown as FastifyInstance;

  const routes: RouteMeta[] = [];
  // 405 needs to know which methods a path has; find-my-way answers that for a concrete path.
  const methodRouter = FindMyWay();
  const seenRoutes: { method: string; url: string; meta: RouteMeta | undefined }[] = [];
  app.decorate('gatehouse', { services, routes, metrics, verifiers });
  app.decorateRequest('principal', undefined);
  app.decorateRequest('authority', undefined);
  app.decorateRequest('rawBody', undefined);
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerJsonBodyParser(app, config.server.maxJsonDepth);
  registerFormBodyParser(app);
  await app.register(cookie);

  for (const feature of options.features) {
    if (feature.errorCodes) registerErrorCodes(feature.errorCodes);
  }

  // Every route, ours or a plugin's, is recorded; onReady refuses any without a guard.
  app.addHook('onRoute', (route) => {
    const methods = Array.isArray(route.method) ? route.method : [route.method];
    for (const method of methods) {
      if (method === 'HEAD' || method === 'OPTIONS') continue;
      seenRoutes.push({ method, url: route.url, meta: route.config?.gatehouse });
    }
  });

  registerSecurityHeaders(app, { tls: tls !== undefined });

  // Before CORS, which answers preflights from its own hook: preflights count against the IP too.
  // The limits are read from the live configuration on every request (they reload).
  const limiter: RateLimiterDeps = {
    get config() {
      return live.current();
    },
    kv,
    logger,
    now,
    hits: metrics.rateLimitHits,
  };
  app.addHook('onRequest', async (request, reply) => {
    const meta = request.routeOptions.config.gatehouse;
    if (meta?.unmetered) return;
    await enforceRateLimit(limiter, reply, meta?.rateCategory ?? 'read', 'ip', request.ip);
  });
  await registerCors(app, () => live.current().cors.origins, openCorsPaths(options.features));

  registerErrorPath(app, methodRouter);
  registerRequestLog(app, metrics);
  await registerOpenApi(app);

  const routeContext: RouteContext = { app, config, live, services, verifiers, limiter, routes, methodRouter };
  for (const feature of options.features) {
    for (const route of feature.routes) registerRoute(routeContext, feature, route);
  }

  // The reference UI (/docs) and /favicon.ico: a plugin's routes, public and read-category.
  await registerDocsUi(app, (method, url) => {
    routes.push({ method, url, guard: { kind: 'public' }, permission: null, rateCategory: 'read', summary: 'API reference UI', hasBody: false, feature: 'docs' });
    methodRouter.on(method as 'GET', url, () => undefined);
  });

  app.addHook('onReady', async () => {
    const unguarded = seenRoutes.filter((r) => r.meta === undefined && !routes.some((m) => m.method === r.method && m.url === r.url));
    if (unguarded.length > 0) {
      const first = unguarded[0];
      throw new Error(`refusing to start: route ${first?.method} ${first?.url} declares no guard`);
    }
  });

  return app;
}

/** One log line and the request metrics per response, with the route pattern and timing. */
function registerRequestLog(app: FastifyInstance, metrics: HttpMetrics): void {
  // Metric children are cached per label set: prom-client would otherwise hash the labels per call.
  const requestCounters = new Map<string, { inc: () => void }>();
  const durationHistograms = new Map<string, { observe: (v: number) => void }>();
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched';
    const status = String(reply.statusCode);
    const counterKey = `${request.method} ${route} ${status}`;
    let counter = requestCounters.get(counterKey);
    if (!counter) {
      counter = metrics.requests.labels(request.method, route, status);
      requestCounters.set(counterKey, counter);
    }
    counter.inc();
    const histKey = `${request.method} ${route}`;
    let hist = durationHistograms.get(histKey);
    if (!hist) {
      hist = metrics.duration.labels(request.method, route);
      durationHistograms.set(histKey, hist);
    }
    hist.observe(reply.elapsedTime / 1000);
    request.log.info(
      { method: request.method, url: request.url, route, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 10) / 10, ip: request.ip },
      'request',
    );
    done();
  });
}

/** The OpenAPI document (served by the docs UI), with the security schemes of the guards. */
async function registerOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Gatehouse API',
        version: '0.1.0',
        description: 'Every operation states its guard (who may call it) and its rate category. Errors share one envelope: `{ "error": { "code", "message", "requestId" } }`.',
      },
      components: {
        securitySchemes: {
          session: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'Access token of a signed-in user.' },
          apiKey: { type: 'http', scheme: 'bearer', description: 'A Gatehouse API key (also accepted as x-api-key).' },
          metricsToken: { type: 'http', scheme: 'bearer', description: 'metrics.token' },
          cronSecret: { type: 'http', scheme: 'bearer', description: 'cron.secret' },
        },
      },
    },
    transform: jsonSchemaTransform,
  });
}

/** What registering a feature's route needs of the server being built. */
interface RouteContext {
  app: FastifyInstance;
  config: Config;
  live: LiveConfig;
  services: Services;
  verifiers: Verifiers;
  limiter: RateLimiterDeps;
  routes: RouteMeta[];
  methodRouter: FindMyWay.Instance<FindMyWay.HTTPVersion.V1>;
}

/** Registers one route of a feature behind its guard, permission and rate limit, and records it. */
function registerRoute(ctx: RouteContext, feature: Feature, route: RouteDef): void {
  const { app, config, live, services, verifiers, limiter, routes, methodRouter } = ctx;
  const errorResponses = { '4xx': errorEnvelopeSchema, '5xx': errorEnvelopeSchema };
  const meta: RouteMeta = {
    method: route.method,
    url: route.url,
    guard: route.guard,
    permission: route.permission,
    rateCategory: route.rateCategory,
    summary: route.summary,
    hasBody: route.schema.body !== undefined,
    feature: feature.id,
    ...(route.errorFormat ? { errorFormat: route.errorFormat } : {}),
    ...(route.unmetered ? { unmetered: true as const } : {}),
    ...(route.cors ? { cors: route.cors } : {}),
    ...(route.formBody ? { formBody: true as const } : {}),
    ...(route.budgets && route.budgets.length > 0 ? { budgets: route.budgets } : {}),
  };
  routes.push(meta);
  methodRouter.on(route.method, route.url, () => undefined);
  const guard = GUARDS[route.guard.kind];
  const permission = route.permission;
  const authorize = verifiers.authorize;
  const scheme = SECURITY_SCHEME[route.guard.kind];
  // Guards read tokens and secrets (metrics, cron, CORS origins for CSRF) from the live configuration.
  const guardDeps = {
    get config() {
      return live.current();
    },
    verifiers,
  };
  app.route({
    method: route.method,
    url: route.url,
    ...(route.bodyLimit !== undefined ? { bodyLimit: route.bodyLimit } : {}),
    ...(route.rawBody ? { preParsing: keepRawBody(route.bodyLimit ?? config.server.bodyLimitBytes) } : {}),
    config: { gatehouse: meta },
    schema: {
      summary: route.summary,
      description: `Guard: ${describeGuard(route.guard)}. Permission: ${route.permission ?? 'none'}. Rate category: ${route.rateCategory}.`,
      tags: [feature.id],
      ...(route.hidden ? { hide: true } : {}),
      ...(scheme ? { security: [{ [scheme]: [] }] } : {}),
      ...(route.schema.params ? { params: route.schema.params } : {}),
      ...(route.schema.querystring ? { querystring: route.schema.querystring } : {}),
      ...(route.schema.body ? { body: route.schema.body } : {}),
      ...(route.schema.headers ? { headers: route.schema.headers } : {}),
      response: { ...route.schema.response, ...(route.errorFormat ? { '4xx': route.errorFormat.schema, '5xx': route.errorFormat.schema } : errorResponses) },
    },
    // The guard runs before validation, so an unauthenticated caller learns nothing of the schema.
    // A public route has nothing to check, so it gets no hook at all.
    ...(route.guard.kind === 'public'
      ? {}
      : {
          preValidation: async (request: FastifyRequest, reply: FastifyReply) => {
            const principal = await guard.run(request, route.guard, guardDeps);
            request.principal = principal;
            if (principal) await enforceRateLimit(limiter, reply, route.rateCategory, 'principal', principal.rateKey ?? `${principal.kind}:${principal.id}`, principal.rateLimit);
            if (permission !== null) {
              if (!principal || !authorize) throw new AppError('FORBIDDEN');
              const info = { requestId: request.id, ip: request.ip, userAgent: request.headers['user-agent'], principal };
              request.authority = await runWithRequest(info, () => authorize(principal, permission, request.params as Record<string, string | undefined>, request));
            }
          },
        }),
    handler: async (request, reply) =>
      runWithRequest({ requestId: request.id, ip: request.ip, userAgent: request.headers['user-agent'], principal: request.principal }, () =>
        route.handler({
          params: request.params as never,
          query: request.query as never,
          body: request.body as never,
          request,
          reply,
          services,
          principal: request.principal,
          authority: request.authority,
        }),
      ),
  });
}
