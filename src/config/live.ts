/**
 * The live configuration (OPS-3): the options that may change without a restart are read from
 * here per request, never captured at creation. A reload builds a whole candidate configuration
 * (defaults < config file < environment, `<VAR>_FILE` files read again), keeps the options that
 * cannot change live from the running one (naming the ones that differ: they need a restart),
 * lets every subscriber check the result, and only then swaps it in: a candidate refused by the
 * schema or by any subscriber changes nothing.
 *
 * A request reads `current()` once where it decides (the guard, the CORS hook, the rate limiter,
 * the gateway's provider list, the mail sender): work already under way finishes with what it read.
 */
import { createHash } from 'node:crypto';
import { checkConfig, ConfigError, listOptions, maskedConfig } from './load.ts';
import type { Config } from './schema.ts';

/**
 * Options that apply on the next request after a reload (dotted paths; a path covers what is under
 * it). Every other option needs a restart. Features that add reloadable options append here.
 */
export const RELOADABLE_OPTIONS: readonly string[] = [
  'gateway.providerKeys',
  'mail.smtpUrl',
  'mail.from',
  'metrics.token',
  'metrics.open',
  'cron.secret',
  'cors.origins',
  'rateLimit.enabled',
  'rateLimit.onStoreError',
  'rateLimit.categories',
  'budgets.onStoreError',
  'budgets.defaultMaxTokens',
  'budgets.reservationTtlSeconds',
  'budgets.definitionCacheSeconds',
  'guard.external',
  'social.providers',
  'social.clientSecrets',
  'social.allowInsecureRequests',
  'log.level',
  'trust.publicReport',
  'trust.publicCacheSeconds',
  'trust.dependencyAuditFile',
];

export interface LiveSubscriber {
  /** Throws (with a reason free of secret values) to refuse a candidate; runs before anything changes. */
  check?: (next: Config) => void;
  /** Called once the candidate is current. */
  apply?: (next: Config, previous: Config) => void;
}

export interface ReloadOutcome {
  status: 'applied' | 'unchanged' | 'refused';
  /** Options whose value changed and now apply (names only). */
  changed: string[];
  /** Options whose value changed in the sources but that need a restart (kept at their running value). */
  needsRestart: string[];
  /** Why a refused reload was refused (never a value). */
  reason?: string;
  /** SHA-256 of the running configuration with secrets masked. */
  configSha256: string;
  at: string;
}

/** Where a reload reads the configuration from, and the files worth watching for changes. */
export interface ConfigSource {
  load: () => Config;
  /** The config file and every `<VAR>_FILE` file the configuration was read from (absolute paths). */
  files: () => string[];
  /** How often the files are polled for changes, in ms (default 2000). */
  watchIntervalMs?: number;
}

export interface LiveConfig {
  current(): Config;
  /** Every secret value of the running configuration and of the one before it (log scrubbing). */
  knownSecrets(): Config[];
  subscribe(subscriber: LiveSubscriber): () => void;
  /** Loads a candidate from the source and applies it when every check passes (refused without a source). */
  reload(now?: () => number): ReloadOutcome;
  /** The files the source reads (for watching); empty without a source. */
  watchedFiles(): string[];
  /** How often to poll them, in ms. */
  watchIntervalMs(): number;
  /** The outcome of the last reload, if any. */
  lastReload(): ReloadOutcome | undefined;
}

function valueAt(config: unknown, path: string): unknown {
  let node = config;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function setAt(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) node = node[part] as Record<string, unknown>;
  const last = parts[parts.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = structuredClone(value);
}

const same = (a: unknown, b: unknown): boolean => JSON.stringify(a) === JSON.stringify(b);

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export function isReloadable(path: string): boolean {
  return RELOADABLE_OPTIONS.some((r) => path === r || path.startsWith(`${r}.`));
}

/** SHA-256 (hex) of the configuration with every secret masked: shows that something changed, never what. */
export function configFingerprint(config: Config): string {
  return createHash('sha256').update(JSON.stringify(sortKeys(maskedConfig(config)))).digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.keys(value).sort().map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]));
  }
  return value;
}

/**
 * The running configuration with the candidate's reloadable options, and the names of the options
 * that changed (applied, or needing a restart).
 */
export function planReload(running: Config, candidate: Config): { next: Config; changed: string[]; needsRestart: string[] } {
  const next = structuredClone(running) as unknown as Record<string, unknown>;
  const changed: string[] = [];
  const needsRestart: string[] = [];
  for (const option of listOptions()) {
    const before = valueAt(running, option.path);
    const after = valueAt(candidate, option.path);
    if (same(before, after)) continue;
    if (isReloadable(option.path)) {
      setAt(next, option.path, after);
      changed.push(option.path);
    } else {
      needsRestart.push(option.path);
    }
  }
  return { next: next as unknown as Config, changed, needsRestart };
}

/** Creates the holder with the configuration the node started with. */
export function createLiveConfig(initial: Config, source?: ConfigSource): LiveConfig {
  let current = initial;
  let previous: Config | undefined;
  let last: ReloadOutcome | undefined;
  const subscribers = new Set<LiveSubscriber>();

  function reload(now: () => number = Date.now): ReloadOutcome {
    const at = new Date(now()).toISOString();
    const refuse = (reason: string): ReloadOutcome => {
      last = { status: 'refused', changed: [], needsRestart: [], reason, configSha256: configFingerprint(current), at };
      return last;
    };
    if (!source) return refuse('this node was started without a configuration source to reload from');
    let candidate: Config;
    try {
      candidate = source.load();
    } catch (err) {
      return refuse(err instanceof ConfigError ? err.message : 'the configuration could not be read');
    }
    const plan = planReload(current, candidate);
    if (plan.changed.length === 0) {
      last = { status: 'unchanged', changed: [], needsRestart: plan.needsRestart, configSha256: configFingerprint(current), at };
      return last;
    }
    for (const subscriber of [{ check: checkConfig }, ...subscribers]) {
      try {
        subscriber.check?.(plan.next);
      } catch (err) {
        return refuse(err instanceof Error ? err.message : 'refused by a feature');
      }
    }
    const before = current;
    previous = before;
    current = deepFreeze(plan.next);
    for (const subscriber of subscribers) subscriber.apply?.(current, before);
    last = { status: 'applied', changed: plan.changed, needsRestart: plan.needsRestart, configSha256: configFingerprint(current), at };
    return last;
  }

  return {
    current: () => current,
    knownSecrets: () => (previous ? [current, previous] : [current]),
    subscribe: (subscriber) => {
      subscribers.add(subscriber);
      return () => subscribers.delete(subscriber);
    },
    reload,
    watchedFiles: () => source?.files() ?? [],
    watchIntervalMs: () => source?.watchIntervalMs ?? 2000,
    lastReload: () => last,
  };
}
