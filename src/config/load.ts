/**
 * Loads the configuration once: defaults < config file < environment, validated by the one
 * schema and frozen. Secrets come only from the environment or from `*_FILE` paths.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { z } from 'zod';
import { configSchema, metaOf, type Config, type OptionMeta } from './schema.ts';

export interface OptionInfo {
  /** Dotted path, e.g. `server.port`. */
  path: string;
  env: string;
  meta: OptionMeta;
  schema: z.ZodType;
}

/** Thrown for any invalid configuration; the message names the option and the reason. */
export class ConfigError extends Error {
  override name = 'ConfigError';
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  // Defaults and prefaults wrap the object schemas; options sit inside them.
  while (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
    s = s.def.innerType as z.ZodType;
  }
  return s;
}

function envNameOf(path: string): string {
  return 'GATEHOUSE_' + path.replace(/\./g, '_').replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase();
}

let optionsCache: OptionInfo[] | undefined;

/** Every leaf option of the schema, in declaration order (computed once: the schema is static). */
export function listOptions(): OptionInfo[] {
  optionsCache ??= walkOptions();
  return optionsCache;
}

function walkOptions(): OptionInfo[] {
  const out: OptionInfo[] = [];
  const walk = (schema: z.ZodType, prefix: string): void => {
    const meta = metaOf(schema);
    if (meta) {
      out.push({ path: prefix, env: envNameOf(prefix), meta, schema });
      return;
    }
    const inner = unwrap(schema);
    if (inner instanceof z.ZodObject) {
      for (const [key, child] of Object.entries(inner.shape as Record<string, z.ZodType>)) {
        walk(child, prefix ? `${prefix}.${key}` : key);
      }
      return;
    }
    throw new Error(`config option ${prefix} has no documentation`);
  };
  walk(configSchema, '');
  return out;
}

/** Describes the type of an option for docs and for parsing environment strings. */
export function typeOf(schema: z.ZodType): 'string' | 'number' | 'boolean' | 'enum' | 'json' {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodNumber) return 'number';
  if (inner instanceof z.ZodBoolean) return 'boolean';
  if (inner instanceof z.ZodEnum) return 'enum';
  if (inner instanceof z.ZodString || inner instanceof z.ZodURL) return 'string';
  return 'json';
}

function parseEnvValue(option: OptionInfo, raw: string, source: string): unknown {
  switch (typeOf(option.schema)) {
    case 'number': {
      const n = raw.trim() === '' ? Number.NaN : Number(raw);
      if (!Number.isFinite(n)) throw new ConfigError(`${option.path} (${source}): expected a number, got "${raw.slice(0, 40)}"`);
      return n;
    }
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on'].includes(v)) return true;
      if (['false', '0', 'no', 'off'].includes(v)) return false;
      throw new ConfigError(`${option.path} (${source}): expected true or false, got "${raw}"`);
    }
    case 'json': {
      const trimmed = raw.trim();
      // Lists may be given comma-separated for convenience.
      if (!trimmed.startsWith('[') && !trimmed.startsWith('{')) {
        return trimmed === '' ? [] : trimmed.split(',').map((s) => s.trim());
      }
      try {
        return JSON.parse(trimmed) as unknown;
      } catch {
        throw new ConfigError(`${option.path} (${source}): expected JSON`);
      }
    }
    default:
      return raw;
  }
}

function setPath(target: Record<string, unknown>, path: string, value: unknown): void {
  const parts = path.split('.');
  let node = target;
  for (const part of parts.slice(0, -1)) {
    const next = node[part];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[part] = {};
    node = node[part] as Record<string, unknown>;
  }
  node[parts[parts.length - 1] as string] = value;
}

function getPath(source: Record<string, unknown>, path: string): unknown {
  let node: unknown = source;
  for (const part of path.split('.')) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

export interface LoadConfigOptions {
  env?: NodeJS.ProcessEnv;
  /** Path of a JSON config file; default: GATEHOUSE_CONFIG, else ./gatehouse.config.json when it exists. */
  configFile?: string;
  /** Values that override everything (tests). */
  overrides?: Record<string, unknown>;
  cwd?: string;
}

export interface LoadedConfig {
  config: Config;
  /** Where each option's value came from, for doctor. */
  sources: Record<string, string>;
  configFile: string | undefined;
}

function readConfigFile(path: string, explicit: boolean): Record<string, unknown> | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if (!explicit && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ConfigError(`config file ${path}: cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`config file ${path}: must hold a JSON object`);
    }
    return parsed as Record<string, unknown>;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`config file ${path}: invalid JSON`);
  }
}

/**
 * Loads, validates and freezes the configuration.
 * @example const { config } = loadConfig({ env: process.env });
 */
export function loadConfig(options: LoadConfigOptions = {}): LoadedConfig {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const explicitFile = options.configFile ?? env.GATEHOUSE_CONFIG;
  const filePath = resolve(cwd, explicitFile ?? 'gatehouse.config.json');
  const fileValues = readConfigFile(filePath, explicitFile !== undefined) ?? {};
  const input: Record<string, unknown> = structuredClone(fileValues);
  const sources: Record<string, string> = {};
  const optionList = listOptions();
  const known = new Set(optionList.flatMap((o) => [o.env, ...(o.meta.aliases ?? [])]));

  for (const option of optionList) {
    const fromFile = getPath(fileValues, option.path);
    if (fromFile !== undefined) {
      if (option.meta.secret) {
        throw new ConfigError(
          `${option.path}: is a secret and may not be set in the config file; use ${option.env} or ${option.env}_FILE`,
        );
      }
      sources[option.path] = `file ${filePath}`;
    }
    const names = [option.env, ...(option.meta.aliases ?? [])];
    for (const name of names.toReversed()) {
      const direct = env[name];
      const fileRef = env[`${name}_FILE`];
      if (direct !== undefined && fileRef !== undefined) {
        throw new ConfigError(`${option.path}: both ${name} and ${name}_FILE are set; use one`);
      }
      if (fileRef !== undefined) {
        let raw: string;
        try {
          raw = readFileSync(resolve(cwd, fileRef), 'utf8').replace(/\r?\n$/, '');
        } catch (err) {
          throw new ConfigError(`${option.path}: ${name}_FILE cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
        }
        setPath(input, option.path, parseEnvValue(option, raw, `${name}_FILE`));
        sources[option.path] = `env ${name}_FILE`;
      } else if (direct !== undefined) {
        setPath(input, option.path, parseEnvValue(option, direct, name));
        sources[option.path] = `env ${name}`;
      }
    }
  }

  // A misspelt GATEHOUSE_ variable would otherwise be silently ignored.
  for (const name of Object.keys(env)) {
    if (!name.startsWith('GATEHOUSE_') || name === 'GATEHOUSE_CONFIG') continue;
    const base = name.endsWith('_FILE') ? name.slice(0, -5) : name;
    if (!known.has(name) && !known.has(base)) throw new ConfigError(`${name}: unknown option (see docs/config.md)`);
  }

  if (options.overrides) {
    for (const [path, value] of Object.entries(options.overrides)) {
      setPath(input, path, value);
      sources[path] = 'override';
    }
  }

  const result = configSchema.safeParse(input);
  if (!result.success) {
    const issue = result.error.issues[0];
    const path = issue?.path.join('.') ?? '(root)';
    let reason = issue?.message ?? 'invalid';
    if (issue?.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => (path ? `${path}.${k}` : k)).join(', ');
      throw new ConfigError(`${keys}: unknown option`);
    }
    reason = reason.replace(/^Invalid input: /, '');
    throw new ConfigError(`${path || '(root)'}: ${reason}`);
  }
  const config = result.data;
  checkConfig(config);
  return { config: deepFreeze(config), sources, configFile: Object.keys(fileValues).length > 0 ? filePath : undefined };
}

/** The rules across options that the schema cannot state; a reload checks them on what it would run. */
export function checkConfig(config: Config): void {
  if ((config.tls.certFile === undefined) !== (config.tls.keyFile === undefined)) {
    throw new ConfigError('tls.certFile: certFile and keyFile must be set together');
  }
  if (config.tls.redirectHttpPort !== undefined && config.tls.certFile === undefined) {
    throw new ConfigError('tls.redirectHttpPort: only meaningful when TLS is configured (tls.certFile, tls.keyFile)');
  }
  const providerIds = new Set(config.gateway.providers.map((p) => p.id));
  for (const id of Object.keys(config.gateway.providerKeys ?? {})) {
    // Names only the provider id, never the key.
    if (!providerIds.has(id)) {
      throw new ConfigError(
        `gateway.providerKeys: names the provider "${id}", which gateway.providers does not list; set GATEHOUSE_GATEWAY_PROVIDERS too, e.g. [{"id": "${id}", "kind": "openai-compatible", "baseUrl": "https://api.example.com", "models": ["*"]}] (kind is openai, anthropic, azure-openai or openai-compatible; the host must be on GATEHOUSE_GATEWAY_UPSTREAM_ALLOWED_HOSTS)`,
      );
    }
  }
}

/**
 * A reload source for the live configuration: loads again with the same options, and names the
 * files read (the config file, every `<VAR>_FILE`), so a node can watch them.
 */
export function configSourceOf(options: LoadConfigOptions = {}): { load: () => Config; files: () => string[] } {
  return {
    load: () => loadConfig(options).config,
    files: () => {
      const env = options.env ?? process.env;
      const cwd = options.cwd ?? process.cwd();
      const files: string[] = [];
      const explicitFile = options.configFile ?? env.GATEHOUSE_CONFIG;
      files.push(resolve(cwd, explicitFile ?? 'gatehouse.config.json'));
      const known = new Set(listOptions().flatMap((o) => [o.env, ...(o.meta.aliases ?? [])]));
      for (const [name, value] of Object.entries(env)) {
        if (name.endsWith('_FILE') && value !== undefined && known.has(name.slice(0, -5))) files.push(resolve(cwd, value));
      }
      return files;
    },
  };
}

const secretsCache = new WeakMap<Config, string[]>();

/** Every configured secret value, so logs can scrub them wherever they appear (cached per frozen config). */
export function secretValues(config: Config): string[] {
  const cached = secretsCache.get(config);
  if (cached) return cached;
  const out: string[] = [];
  for (const option of listOptions()) {
    if (!option.meta.secret) continue;
    const value = getPath(config as unknown as Record<string, unknown>, option.path);
    // A secret option may be a map of secrets (gateway.providerKeys): each value is one.
    const values = typeof value === 'object' && value !== null ? Object.values(value) : [value];
    for (const item of values) {
      if (typeof item !== 'string' || item.length === 0) continue;
      out.push(item);
      // A URL's password is a secret on its own too.
      const match = /^[a-z]+:\/\/[^:/@]*:([^@]+)@/i.exec(item);
      if (match?.[1]) out.push(decodeURIComponent(match[1]));
    }
  }
  if (Object.isFrozen(config)) secretsCache.set(config, out);
  return out;
}

/** The effective configuration with every secret replaced, for doctor and logs. */
export function maskedConfig(config: Config): Record<string, unknown> {
  const copy = structuredClone(config) as unknown as Record<string, unknown>;
  for (const option of listOptions()) {
    if (option.meta.secret && getPath(copy, option.path) !== undefined) setPath(copy, option.path, '••••••');
  }
  return copy;
}
