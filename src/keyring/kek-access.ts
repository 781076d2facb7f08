/**
 * The keyring's key-encryption keys (DATA-1): local KEK bytes (environment, key file), or KEKs that
 * stay in a KMS or an HSM, which wraps and unwraps data keys itself. Everything the keyring does
 * with a KEK goes through here: which version is primary, wrapping, unwrapping, making a new data
 * key, reloading after a rotation, and where each version lives (`keys status`).
 */
import { randomBytes } from 'node:crypto';
import { KEY_BYTES } from '../crypto/aead.ts';
import { unwrapKey, wrapKey } from '../crypto/envelope.ts';
import { CryptoError } from '../crypto/errors.ts';
import type { Kek, KekSource } from '../crypto/kek-source.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';

export interface KekAccess {
  primary(): number;
  versions(): number[];
  /** Where a version lives, for `keys status`: the source's name, or the remote source and its key. */
  location(version: number): string;
  unwrap(version: number, wrapped: string, aad: Buffer): Promise<Buffer>;
  wrap(version: number, key: Buffer, aad: Buffer): Promise<string>;
  /** A new 32-byte data key under the primary version: its bytes and wrapped form. */
  generate(aad: Buffer): Promise<{ version: number; key: Buffer; wrapped: string }>;
  /** Reads the KEKs again (a rotation on another node, or a new version in the HSM). */
  reload(): Promise<void>;
  healthy(): boolean;
  remote: RemoteKekSource | null;
}

function isRemote(source: KekSource | RemoteKekSource): source is RemoteKekSource {
  return 'unwrap' in source;
}

export async function createKekAccess(source: KekSource | RemoteKekSource): Promise<KekAccess> {
  const remote = isRemote(source) ? source : null;
  let keks = new Map<number, Buffer>();
  let primary = 0;
  const setKeks = (list: Kek[]): void => {
    if (list.length === 0) throw new CryptoError('KEYRING_INVALID', 'the keyring holds no key-encryption key');
    keks = new Map(list.map((k) => [k.version, k.key]));
    primary = Math.max(...list.map((k) => k.version));
  };
  const remotePrimary = (r: RemoteKekSource): number => {
    const versions = r.versions();
    if (versions.length === 0) throw new CryptoError('KEK_MISSING', `no key-encryption key is available in ${r.name}`);
    return Math.max(...versions);
  };
  if (remote) {
    // An HSM's versions are what its token holds: read them before the first use.
    if (remote.refresh && remote.versions().length === 0) await remote.refresh();
    primary = remotePrimary(remote);
  }
  else setKeks(await (source as KekSource).load());

  async function reload(): Promise<void> {
    if (remote) {
      // A KMS's versions are its configuration (a new one comes with a restart); an HSM is asked again.
      if (remote.refresh) {
        await remote.refresh();
        primary = remotePrimary(remote);
      }
      return;
    }
    setKeks(await (source as KekSource).load());
  }

  async function kekFor(version: number): Promise<Buffer> {
    let kek = keks.get(version);
    if (!kek) {
      // Another node may have added a version since this one loaded the keys.
      await reload();
      kek = keks.get(version);
    }
    if (!kek) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not in the keyring`);
    return kek;
  }

  async function remoteHas(r: RemoteKekSource, version: number): Promise<void> {
    if (r.versions().includes(version)) return;
    if (r.refresh) await reload();
    if (!r.versions().includes(version)) throw new CryptoError('KEK_MISSING', `key-encryption key version ${version} is not configured`);
  }

  return {
    remote,
    primary: () => primary,
    versions: () => (remote ? remote.versions() : [...keks.keys()]).sort((a, b) => a - b),
    location: (version) => (remote ? `${remote.name} ${remote.locationOf(version) ?? '?'}` : source.name),
    healthy: () => remote?.healthy() ?? true,
    reload,
    async unwrap(version, wrapped, aad) {
      if (!remote) return unwrapKey(await kekFor(version), wrapped, aad);
      await remoteHas(remote, version);
      return remote.unwrap(version, wrapped, aad);
    },
    async wrap(version, key, aad) {
      if (!remote) return wrapKey(await kekFor(version), key, aad);
      await remoteHas(remote, version);
      return remote.wrap(version, key, aad);
    },
    async generate(aad) {
      // A KMS makes the data key itself (GenerateDataKey); locally it is random bytes wrapped here.
      if (remote) return remote.generateDek(aad);
      const key = randomBytes(KEY_BYTES);
      return { version: primary, key, wrapped: wrapKey(await kekFor(primary), key, aad) };
    },
  };
}
