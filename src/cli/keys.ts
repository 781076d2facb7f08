/**
 * `gatehouse keys status | rotate kek | rotate dek [--tenant T] | rotate signing`, each with
 * --dry-run and a progress bar on long work. They run against the configured storage and kv,
 * so on PostgreSQL + Redis the running nodes see the changes (cache evictions go through kv).
 * On embedded PGlite they refuse while a server holds the data directory (exit 3).
 */
import { SingleBar, Presets } from 'cli-progress';
import type { Logger } from 'pino';
import pino from 'pino';
import type { LoadedConfig } from '../config/load.ts';
import { AUDIT_ACTIONS, SEALED_COLUMNS } from '../features.ts';
import { PLATFORM_TENANT_ID, type Keyring } from '../keyring/keyring.ts';
import { rotateDeks } from '../keyring/reencrypt.ts';
import { createSigningKeys, SIGNING_PURPOSES, type SigningPurpose } from '../keyring/signing-keys.ts';
import { kekSourceFromConfig } from '../keyring/source.ts';
import type { Db } from '../store/db-types.ts';
import { createKv, reportToLogger } from '../store/kv/index.ts';
import type { Kv } from '../store/kv/types.ts';
import { openKeyring } from './runtime.ts';
import { createAuditLog } from '../audit/index.ts';
import { openStorage } from './storage.ts';

export type Out = (line: string) => void;

export interface Opened {
  db: Db;
  kv: Kv;
  keyring: Keyring;
  close: () => Promise<void>;
}

/** Storage (migrated), kv and the keyring, for commands that work on keys or sealed data. */
export async function openAll(loaded: LoadedConfig, logger: Logger): Promise<Opened> {
  const { config } = loaded;
  const storage = await openStorage(config);
  let kv: Kv | undefined;
  try {
    await storage.db.migrate();
    kv = await createKv({ redisUrl: config.kv.redisUrl, keyPrefix: config.kv.keyPrefix, onError: reportToLogger(logger) });
    const keyring = await openKeyring(config, storage.db, kv, logger);
    const openKv = kv;
    return {
      db: storage.db,
      kv: openKv,
      keyring,
      close: async () => {
        await keyring.close();
        await openKv.close();
        await storage.close();
      },
    };
  } catch (err) {
    await kv?.close().catch(() => undefined);
    await storage.close();
    throw err;
  }
}

async function liveDeks(keyring: Keyring): Promise<number> {
  const { deks } = await keyring.status();
  return deks.active + deks.retired;
}

function bar(label: string): SingleBar {
  return new SingleBar({ format: `${label} [{bar}] {value}/{total}`, stream: process.stderr, hideCursor: true, noTTYOutput: false }, Presets.shades_classic);
}

/** Warnings and errors to stderr only: stdout carries the command's output. */
export const quietLogger = (): Logger => pino({ level: 'warn' }, pino.destination(2));

export async function runKeysStatus(loaded: LoadedConfig, out: Out): Promise<void> {
  const o = await openAll(loaded, quietLogger());
  try {
    const status = await o.keyring.status();
    const source = kekSourceFromConfig(loaded.config);
    out(`Key-encryption keys (source: ${source.name}):`);
    for (const k of status.keks) out(`  v${k.version}${k.primary ? ' (primary)' : ''}: wraps ${k.wrapsDeks} data key(s), in ${k.location}`);
    out(`Minimum decryption KEK version: ${status.minDecryptKekVersion}`);
    out(`Data keys: ${status.deks.active} active, ${status.deks.retired} retired, ${status.deks.destroyed} destroyed, across ${status.deks.tenants} tenant(s)`);
    const signing = await createSigningKeys({ db: o.db, kv: o.kv, keyring: o.keyring });
    try {
      out('Signing keys:');
      for (const k of await signing.list()) out(`  ${k.purpose} ${k.kid} ${k.state}`);
    } finally {
      await signing.close();
    }
  } finally {
    await o.close();
  }
}

/** Appends a key event to the platform audit log (operator actions from the CLI have no request: actor system). */
async function auditKeyEvent(o: Opened, loaded: LoadedConfig, data: Record<string, string | number | boolean | null>): Promise<void> {
  const signing = await createSigningKeys({ db: o.db, kv: o.kv, keyring: o.keyring });
  try {
    await signing.ensure();
    const log = createAuditLog({ db: o.db, keyring: o.keyring, signingKeys: signing, settings: loaded.config.audit, actions: AUDIT_ACTIONS, now: Date.now });
    await log.record({ tenantId: PLATFORM_TENANT_ID, action: 'keys.rotated', data });
  } finally {
    await signing.close();
  }
}

export async function runRotateKek(loaded: LoadedConfig, opts: { dryRun: boolean }, out: Out): Promise<void> {
  const o = await openAll(loaded, quietLogger());
  try {
    const source = kekSourceFromConfig(loaded.config);
    if (opts.dryRun) {
      const stale = await o.keyring.rewrapAll({ dryRun: true });
      out(
        source.name === 'file'
          ? `dry run: would add KEK v${o.keyring.primaryKekVersion() + 1} to the key file and rewrap ${await liveDeks(o.keyring)} data key(s)`
          : `dry run: ${stale} data key(s) are not yet wrapped by the primary KEK v${o.keyring.primaryKekVersion()}`,
      );
      return;
    }
    if ('check' in source && source.addVersion) {
      const version = await source.addVersion();
      out(`made KEK v${version} in the HSM (${source.name}, ${source.locationOf(version) ?? '?'}; primary)`);
    } else if ('check' in source) {
      out(`KEKs live in the KMS (${source.name}): rewrapping under its highest configured version, v${o.keyring.primaryKekVersion()}`);
    } else if (source.name === 'file') {
      const added = await source.addVersion();
      out(`added KEK v${added.version} to the key file (primary)`);
    } else {
      out(`keys come from the environment: rewrapping under its highest version, v${o.keyring.primaryKekVersion()}`);
    }
    await o.keyring.reloadKeks();
    const progress = bar('rewrap');
    let started = false;
    const done = await o.keyring.rewrapAll({
      onProgress: (d, total) => {
        if (!started) {
          progress.start(total, 0);
          started = true;
        }
        progress.update(d);
      },
    });
    if (started) progress.stop();
    out(`rewrapped ${done} data key(s) under KEK v${o.keyring.primaryKekVersion()}`);
    if ('check' in source && source.retire) {
      // Every data key is under the primary now: the older versions never wrap again.
      const status = await o.keyring.status();
      for (const k of status.keks) {
        if (k.primary || k.wrapsDeks > 0 || (source.locationOf(k.version) ?? '').includes('retired')) continue;
        await source.retire(k.version);
        out(`retired KEK v${k.version} in the HSM (unwraps only, for older copies)`);
      }
    }
    if ('check' in source) await source.close?.();
    await auditKeyEvent(o, loaded, { kind: 'kek', version: o.keyring.primaryKekVersion(), rewrapped: done });
  } finally {
    await o.close();
  }
}

export async function runRotateDek(loaded: LoadedConfig, opts: { dryRun: boolean; tenant?: string }, out: Out): Promise<void> {
  const o = await openAll(loaded, quietLogger());
  try {
    const columns = SEALED_COLUMNS;
    const progress = bar('re-encrypt');
    progress.start(0, 0);
    const result = await rotateDeks({
      db: o.db,
      keyring: o.keyring,
      columns,
      ...(opts.tenant ? { tenantId: opts.tenant } : {}),
      dryRun: opts.dryRun,
      onProgress: (e) => {
        progress.setTotal(Math.max(progress.getTotal(), e.done));
        progress.update(e.done);
      },
    });
    progress.stop();
    if (opts.dryRun) out(`dry run: ${result.pending} sealed value(s) in ${result.tenants} tenant(s) would be re-encrypted under new data keys`);
    else {
      out(`rotated data keys of ${result.tenants} tenant(s): ${result.jobs} job(s), ${result.resealed} value(s) re-encrypted`);
      await auditKeyEvent(o, loaded, { kind: 'dek', tenants: result.tenants, resealed: result.resealed, tenant: opts.tenant ?? null });
    }
  } finally {
    await o.close();
  }
}

export async function runRotateSigning(loaded: LoadedConfig, opts: { dryRun: boolean; purpose?: string }, out: Out): Promise<void> {
  const purposes = opts.purpose ? [opts.purpose] : [...SIGNING_PURPOSES];
  for (const p of purposes) {
    if (!(SIGNING_PURPOSES as readonly string[]).includes(p)) throw new Error(`--purpose must be one of ${SIGNING_PURPOSES.join(', ')}`);
  }
  const o = await openAll(loaded, quietLogger());
  try {
    const signing = await createSigningKeys({ db: o.db, kv: o.kv, keyring: o.keyring });
    try {
      for (const purpose of purposes as SigningPurpose[]) {
        const r = await signing.rotate(purpose, { dryRun: opts.dryRun });
        out(`${opts.dryRun ? 'dry run: would rotate' : 'rotated'} ${purpose}: ${r.activated} now signs; ${r.published} published as next${r.retired ? `; ${r.retired} retired` : ''}`);
        if (!opts.dryRun) await auditKeyEvent(o, loaded, { kind: 'signing', purpose, activated: r.activated });
      }
    } finally {
      await signing.close();
    }
  } finally {
    await o.close();
  }
}
