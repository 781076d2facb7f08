/**
 * The feature-module contract. Every feature is a module listed in `src/features.ts`:
 *
 *   export const budgetsModule = defineModule({
 *     ref: BUDGETS,                    // moduleRef<Budgets>('budgets'), exported by the feature's index.ts
 *     dependsOn: [AUDIT, GATEWAY],     // the modules whose API it uses (ctx.use) or whose hooks it fills
 *     sealedColumns: [],               // static: `keys rotate dek` lists them without starting a node
 *     auditActions: BUDGET_AUDIT_ACTIONS, // static: the audit log refuses any action no module declares
 *     create: async (ctx) => ({
 *       api,                           // what dependents get from ctx.use(BUDGETS)
 *       feature: { id: 'budgets', routes, errorCodes },
 *       hooks: [hook(AI_CALL_STEPS, step)],   // fills hook points other modules offer
 *       metrics: [gauge], jobs: [job], close: () => store.close(),
 *     }),
 *   });
 *
 * The runtime (src/server/module-runtime.ts) creates modules in dependency order, gives each the
 * core services and the APIs of the modules it depends on, collects what they declare (routes,
 * verifiers, metrics, jobs, hooks) and closes them in reverse order, once. A module reaches another
 * only through `ctx.use(ref)` of a declared dependency and through hook points: never through
 * another feature's internals (the layer rule in eslint.config.js).
 *
 * This file is infrastructure: it knows no feature.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Metric } from 'prom-client';
import type { LiveConfig } from '../config/live.ts';
import type { Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import type { Feature, SealedColumn, Verifiers } from './route.ts';

/** Names a module and the type of the API it gives its dependents. */
export interface ModuleRef<Api> {
  readonly id: string;
  /** Type only: never set. */
  readonly __api?: Api;
}

/** @example export const AUDIT = moduleRef<AuditLog>('audit') */
export function moduleRef<Api>(id: string): ModuleRef<Api> {
  return Object.freeze({ id });
}

/**
 * An extension point a module offers: other modules add functions of type `Fn` to it; the offering
 * module reads the list when it needs it (at call time, so the order of creation does not matter).
 */
export interface HookPoint<Fn> {
  readonly name: string;
  /** Type only: never set. */
  readonly __fn?: Fn;
}

/** @example export const AI_CALL_STEPS = hookPoint<AiCallStep>('gateway.aiCallSteps') */
export function hookPoint<Fn>(name: string): HookPoint<Fn> {
  return Object.freeze({ name });
}

/** One function added to a hook point, as a module declares it. */
export interface HookEntry {
  readonly point: HookPoint<unknown>;
  readonly fn: unknown;
}

/** Typed constructor of a hook entry. @example hook(ACCOUNT_CLEANUP, (userId) => forget(userId)) */
export function hook<Fn>(point: HookPoint<Fn>, fn: Fn): HookEntry {
  return { point: point as HookPoint<unknown>, fn };
}

/** The hook registry: read by the module that offers a point. */
export interface Hooks {
  /** The functions added to `point` so far, in module order (a fresh array). */
  list<Fn>(point: HookPoint<Fn>): Fn[];
}

/** A scheduled job a module declares; the scheduler runs it on one node of the cluster at a time. */
export interface JobDef {
  /** Unique across modules, e.g. `audit.checkpoint`. */
  name: string;
  /** Default cron expression (UTC); the configuration may override it per job. */
  schedule: string;
  summary: string;
  /** Does one run; `signal` aborts at shutdown. Returns a short summary for the job history. */
  run: (context: { signal: AbortSignal; now: () => number }) => Promise<Record<string, unknown> | void>;
}

/** The core services every module gets, and its handle on the others. */
export interface ModuleContext {
  /** The configuration the node started with. Options that reload (src/config/live.ts) are read from `live` per request. */
  config: Config;
  /** The live configuration: `live.current()` per request for reloadable options; `live.subscribe` to check or follow a reload. */
  live: LiveConfig;
  db: Db;
  kv: Kv;
  logger: Logger;
  keyring: Keyring;
  signingKeys: SigningKeys;
  now: () => number;
  /** The API of a module listed in `dependsOn` (refused otherwise, naming the missing dependency). */
  use<Api>(ref: ModuleRef<Api>): Api;
  hooks: Hooks;
  /** Every job every module declared; complete once all modules are created (read it lazily). */
  jobs(): readonly JobDef[];
  /** Every audit action every listed module declares (static, so complete before any module is created). */
  auditActions: readonly string[];
  /** Test and embedding overrides by name (e.g. `mailer`); modules document the ones they read. */
  overrides: Readonly<Record<string, unknown>>;
}

/** What a module's `create` returns. */
export interface ModuleParts<Api> {
  api: Api;
  /** Routes, error codes and sealed columns this module serves. */
  feature?: Feature;
  verifiers?: Partial<Verifiers>;
  hooks?: readonly HookEntry[];
  metrics?: readonly Metric[];
  jobs?: readonly JobDef[];
  /** Called once the server is built, before it is ready (content-type parsers, metrics on its registry). */
  onServer?: (app: FastifyInstance) => void;
  /** Called when the shutdown grace period is over, before connections are cut (stop running work). */
  stop?: () => Promise<void>;
  /** Called once after the server stopped taking requests; modules close in reverse creation order. */
  close?: () => Promise<void>;
}

export interface FeatureModule<Api = unknown> {
  ref: ModuleRef<Api>;
  dependsOn: readonly ModuleRef<unknown>[];
  /** Sealed columns of the module's tables, known without creating it (`keys rotate dek`). */
  sealedColumns?: readonly SealedColumn[];
  /**
   * The audit actions this module records (`area.event`, each declared by one module). Static like
   * `sealedColumns`: the audit log, created before the modules that record, refuses any action no
   * listed module declares, and builds its filter schema from the complete list.
   */
  auditActions?: readonly string[];
  create: (ctx: ModuleContext) => Promise<ModuleParts<Api>> | ModuleParts<Api>;
}

/** Type helper: a module whose `create` returns its ref's API. */
export function defineModule<Api>(module: FeatureModule<Api>): FeatureModule<Api> {
  return module;
}

/** A module that only serves routes (no API, no dependencies): e.g. the health and JWKS routes. */
export function staticModule(feature: Feature): FeatureModule<undefined> {
  return { ref: moduleRef<undefined>(feature.id), dependsOn: [], ...(feature.sealedColumns ? { sealedColumns: feature.sealedColumns } : {}), create: () => ({ api: undefined, feature }) };
}
