/**
 * Runs the feature-module contract (src/server/module.ts): orders modules by their dependencies,
 * creates each with the core services and the APIs it asked for, collects what they declare, and
 * closes them in reverse order, once. Knows no feature: the list comes from src/features.ts.
 */
import type { FastifyInstance } from 'fastify';
import type { Metric } from 'prom-client';
import type { Feature, Verifiers } from './route.ts';
import type { FeatureModule, HookPoint, JobDef, ModuleContext, ModuleParts, ModuleRef } from './module.ts';

/** The core services a module context carries (everything but the module-specific handles). */
export type CoreServices = Omit<ModuleContext, 'use' | 'hooks' | 'jobs' | 'auditActions'>;

export interface CreatedModules {
  /** The modules in creation order. */
  order: readonly FeatureModule[];
  /** The API of a created module. */
  use<Api>(ref: ModuleRef<Api>): Api;
  /** Every module's feature, in the order the modules were listed. */
  features: readonly Feature[];
  verifiers: Verifiers;
  metrics: readonly Metric[];
  jobs: readonly JobDef[];
  /** Every audit action the modules declare, in creation order. */
  auditActions: readonly string[];
  /** Runs every module's `onServer`, in creation order. */
  onServer(app: FastifyInstance): void;
  /** Runs every module's `stop`, in reverse order; errors go to `onError`. */
  stop(onError: (module: string, err: unknown) => void): Promise<void>;
  /** Closes every module once, in reverse creation order; errors go to `onError`. Later calls share the first. */
  close(onError: (module: string, err: unknown) => void): Promise<void>;
}

/**
 * The modules in an order where each comes after everything it depends on; among modules free to
 * go, the listed order is kept. Refuses duplicate ids, unknown dependencies and cycles, naming them.
 */
export function orderModules(modules: readonly FeatureModule[]): FeatureModule[] {
  const byId = new Map<string, FeatureModule>();
  for (const m of modules) {
    if (byId.has(m.ref.id)) throw new Error(`feature module "${m.ref.id}" is listed twice in src/features.ts`);
    byId.set(m.ref.id, m);
  }
  for (const m of modules) {
    for (const dep of m.dependsOn) {
      if (!byId.has(dep.id)) throw new Error(`feature module "${m.ref.id}" depends on "${dep.id}", which is not listed in src/features.ts: add it to the list`);
    }
  }
  const done = new Set<string>();
  const ordered: FeatureModule[] = [];
  const visiting: string[] = [];
  const visit = (m: FeatureModule): void => {
    if (done.has(m.ref.id)) return;
    if (visiting.includes(m.ref.id)) {
      throw new Error(`feature modules depend on each other in a cycle: ${[...visiting.slice(visiting.indexOf(m.ref.id)), m.ref.id].join(' -> ')}; move the shared part into a hook point or a module both depend on`);
    }
    visiting.push(m.ref.id);
    for (const dep of m.dependsOn) visit(byId.get(dep.id) as FeatureModule);
    visiting.pop();
    done.add(m.ref.id);
    ordered.push(m);
  };
  for (const m of modules) visit(m);
  return ordered;
}

/** `area.event`: two or more dot-separated parts of lower-case letters, digits and `_`, starting with a letter. */
function isActionName(action: string): boolean {
  const parts = action.split('.');
  return parts.length >= 2 && /^[a-z]/.test(action) && parts.every((p) => /^[a-z0-9_]+$/.test(p));
}

/**
 * Every audit action the modules declare, in order. Refuses a malformed name and an action two
 * modules declare (each event kind has one owner), naming them.
 */
export function collectAuditActions(modules: readonly FeatureModule[]): string[] {
  const owner = new Map<string, string>();
  for (const m of modules) {
    for (const action of m.auditActions ?? []) {
      if (!isActionName(action)) throw new Error(`feature module "${m.ref.id}" declares the audit action "${action}", which is not of the form area.event (lower case)`);
      const first = owner.get(action);
      if (first !== undefined) throw new Error(`feature module "${m.ref.id}" declares the audit action "${action}", which "${first}" declares: each action has one owner`);
      owner.set(action, m.ref.id);
    }
  }
  return [...owner.keys()];
}

function mergeVerifiers(into: Verifiers, from: Partial<Verifiers>, module: string): void {
  for (const [name, verifier] of Object.entries(from) as [keyof Verifiers, unknown][]) {
    if (verifier === undefined) continue;
    if (name === 'webhook') {
      const webhooks = (into.webhook ??= {});
      for (const [provider, fn] of Object.entries(verifier as Record<string, unknown>)) {
        if (provider in webhooks) throw new Error(`feature module "${module}" declares a webhook verifier "${provider}" another module declared`);
        webhooks[provider] = fn as NonNullable<Verifiers['webhook']>[string];
      }
      continue;
    }
    if (into[name] !== undefined) throw new Error(`feature module "${module}" declares the ${name} verifier another module declared`);
    (into as Record<string, unknown>)[name] = verifier;
  }
}

/**
 * Creates `modules` in dependency order. When one fails, the ones already created are closed in
 * reverse order and the error is rethrown.
 */
export async function createModules(modules: readonly FeatureModule[], core: CoreServices, onCloseError: (module: string, err: unknown) => void): Promise<CreatedModules> {
  const order = orderModules(modules);
  const auditActions = Object.freeze(collectAuditActions(order));
  const parts = new Map<string, ModuleParts<unknown>>();
  const hookLists = new Map<string, unknown[]>();
  const jobs: JobDef[] = [];
  const created: FeatureModule[] = [];

  const closeCreated = async (): Promise<void> => {
    for (const m of [...created].reverse()) {
      const close = parts.get(m.ref.id)?.close;
      if (!close) continue;
      try {
        await close();
      } catch (err) {
        onCloseError(m.ref.id, err);
      }
    }
  };

  try {
    for (const module of order) {
      const allowed = new Set(module.dependsOn.map((d) => d.id));
      const context: ModuleContext = {
        ...core,
        use: <Api>(ref: ModuleRef<Api>): Api => {
          if (!allowed.has(ref.id)) throw new Error(`feature module "${module.ref.id}" uses "${ref.id}" without declaring it in dependsOn`);
          return (parts.get(ref.id) as ModuleParts<Api>).api;
        },
        hooks: { list: <Fn>(point: HookPoint<Fn>): Fn[] => [...((hookLists.get(point.name) ?? []) as Fn[])] },
        jobs: () => jobs,
        auditActions,
      };
      const made = await module.create(context);
      parts.set(module.ref.id, made as ModuleParts<unknown>);
      created.push(module);
      for (const entry of made.hooks ?? []) {
        const list = hookLists.get(entry.point.name) ?? [];
        list.push(entry.fn);
        hookLists.set(entry.point.name, list);
      }
      for (const job of made.jobs ?? []) {
        if (jobs.some((j) => j.name === job.name)) throw new Error(`feature module "${module.ref.id}" declares the job "${job.name}" another module declared`);
        jobs.push(job);
      }
    }
  } catch (err) {
    await closeCreated();
    throw err;
  }

  const verifiers: Verifiers = {};
  for (const m of order) mergeVerifiers(verifiers, parts.get(m.ref.id)?.verifiers ?? {}, m.ref.id);
  const listed = modules.map((m) => parts.get(m.ref.id) as ModuleParts<unknown>);
  let closing: Promise<void> | undefined;
  return {
    order,
    use: <Api>(ref: ModuleRef<Api>): Api => {
      const made = parts.get(ref.id);
      if (!made) throw new Error(`no feature module "${ref.id}" is running`);
      return made.api as Api;
    },
    features: listed.flatMap((p) => (p.feature ? [p.feature] : [])),
    verifiers,
    metrics: order.flatMap((m) => parts.get(m.ref.id)?.metrics ?? []),
    jobs,
    auditActions,
    onServer: (app) => {
      for (const m of order) parts.get(m.ref.id)?.onServer?.(app);
    },
    stop: async (onError) => {
      for (const m of [...order].reverse()) {
        const stop = parts.get(m.ref.id)?.stop;
        if (!stop) continue;
        try {
          await stop();
        } catch (err) {
          onError(m.ref.id, err);
        }
      }
    },
    close: (onError) => {
      closing ??= (async () => {
        for (const m of [...order].reverse()) {
          const close = parts.get(m.ref.id)?.close;
          if (!close) continue;
          try {
            await close();
          } catch (err) {
            onError(m.ref.id, err);
          }
        }
      })();
      return closing;
    },
  };
}
