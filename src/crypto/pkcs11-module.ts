/**
 * The PKCS#11 module of a process (DATA-1, src/crypto/pkcs11-kek.ts): loaded with pkcs11js on first
 * use (a dynamic import, so a node without an HSM never loads the addon), initialized once per path
 * and process, and initialized again after a token outage (every session of the old generation is
 * then dead, and each source opens a new one).
 */
import { CryptoError } from './errors.ts';

export type Pkcs11Module = typeof import('pkcs11js');
export type Handle = Buffer;

/**
 * One loaded module per path and process: PKCS#11 is initialized once per process, and two sources
 * (two keyrings in one process, the CLI beside a node's keyring) share it, each with its own session.
 */
export interface SharedModule {
  lib: Pkcs11Module;
  p11: InstanceType<Pkcs11Module['PKCS11']>;
  users: number;
  /** Bumped each time the module is initialized again after a token outage: older sessions are dead. */
  generation: number;
  broken: boolean;
}

const modules = new Map<string, SharedModule>();

export async function acquire(path: string): Promise<SharedModule> {
  let shared = modules.get(path);
  if (!shared) {
    let lib: Pkcs11Module;
    try {
      lib = (await import('pkcs11js')).default as unknown as Pkcs11Module;
    } catch (err) {
      throw new CryptoError('KEK_UNAVAILABLE', `the PKCS#11 binding (pkcs11js) could not be loaded: ${(err as Error).message}`);
    }
    shared = modules.get(path);
    if (!shared) {
      const p11 = new lib.PKCS11();
      try {
        p11.load(path);
      } catch {
        throw new CryptoError('KEK_UNAVAILABLE', `the PKCS#11 module ${path} could not be loaded`);
      }
      shared = { lib, p11, users: 0, generation: 0, broken: true };
      modules.set(path, shared);
    }
  }
  if (shared.broken) {
    if (shared.generation > 0) {
      try {
        shared.p11.C_Finalize();
      } catch {
        // Not initialized.
      }
    }
    try {
      shared.p11.C_Initialize();
    } catch (err) {
      if (ckr(err) !== 'CKR_CRYPTOKI_ALREADY_INITIALIZED') throw new CryptoError('KEK_UNAVAILABLE', `the PKCS#11 module ${path} did not initialize (${ckr(err) ?? 'no PKCS#11 answer'})`);
    }
    shared.broken = false;
    shared.generation++;
  }
  shared.users++;
  return shared;
}

export function release(shared: SharedModule): void {
  shared.users = Math.max(0, shared.users - 1);
}


/** The CKR_* name of a PKCS#11 failure, or undefined for anything else. */
export function ckr(err: unknown): string | undefined {
  const message = (err as { message?: unknown } | null)?.message;
  return typeof message === 'string' && /^CKR_[A-Z_]+$/.test(message) ? message : undefined;
}

