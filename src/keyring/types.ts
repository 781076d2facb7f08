/**
 * The keyring's shared types and small helpers (DATA-1..3): scopes, the public `Keyring` surface,
 * the data_keys row, the associated data every wrapped data key is bound to. keyring.ts builds the
 * keyring from these; kek-access.ts, dek-cache.ts and maintenance.ts each hold one concern of it.
 */
import type { Logger } from 'pino';
import type { KekSource } from '../crypto/kek-source.ts';
import type { RemoteKekSource } from '../crypto/kms-kek.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';

/*
 * Crypto-shredding and copies of the database. Gatehouse's own backups (src/backup) never hold a
 * KEK, and a tenant shredded before a backup stays unreadable after its restore. Shredding erases
 * a data key in data_keys of the live database; a copy taken before (a dump, a copy of the data
 * directory, a PostgreSQL base backup, replica or WAL archive) still holds the wrapped key, which
 * the KEK still unwraps, so shredding reaches such a copy only when the copy itself is destroyed
 * (Gatehouse's backups: when `backup prune` removes them, after backup.retentionDays).
 * A copy without data_keys is no backup either: its sealed values cannot be opened and a node on
 * it does not start (KEY_UNKNOWN).
 */

/** The platform's own tenant id: its DEK seals platform secrets (signing keys). */
export const PLATFORM_TENANT_ID = '00000000-0000-4000-8000-000000000000';
export const NO_SUBJECT = '';
export const INVALIDATE_CHANNEL = 'keyring:invalidate';

/** Whose key seals a value: a tenant, or one user's personal data within a tenant. */
export interface KeyScope {
  tenantId: string;
  subjectId?: string;
}

/** Where a sealed value lives; the ciphertext is bound to it. */
export interface SealRef {
  table: string;
  column: string;
  rowId: string;
}

export interface KeyringOptions {
  db: Db;
  kv: Kv;
  /** Local KEK bytes (env, file), or KEKs that stay in a KMS, which wraps and unwraps data keys itself. */
  source: KekSource | RemoteKekSource;
  logger?: Logger;
  minDecryptKekVersion?: number;
  dekMaxUses?: number;
  cacheTtlMs?: number;
  cacheMaxEntries?: number;
  now?: () => number;
}

export interface DekRow {
  id: string;
  tenant_id: string;
  subject_id: string | null;
  kek_version: number;
  wrapped: string | null;
  state: 'active' | 'retired' | 'destroyed';
  reserved_uses: string | number;
}

export interface CachedDek {
  id: string;
  tenantId: string;
  subjectId: string;
  key: Buffer;
  kekVersion: number;
  expiresAt: number;
}

/** Seals this node may still make with a DEK before asking the database for more. */
export interface Reservation {
  remaining: number;
}

/** What the shredding probe saw: how many keys its destroy removed, and what opening the canary then gave. */
export interface ShreddingProbe {
  destroyed: number;
  /** `KEY_DESTROYED` when shredding works; `still opened`, or another error code, when not. */
  opened: string;
}

export interface KeyStatus {
  /** `location`: where the KEK lives (the source's name, or the KMS key id). */
  keks: { version: number; primary: boolean; wrapsDeks: number; location: string }[];
  deks: { active: number; retired: number; destroyed: number; tenants: number };
  minDecryptKekVersion: number;
}

export interface Keyring {
  /**
   * Seals plaintext for a tenant (or a user's personal data), bound to its table, column and row.
   * @example const v = await keyring.seal({ tenantId }, { table: 'providers', column: 'api_key', rowId }, secret)
   */
  seal(scope: KeyScope, ref: SealRef, plaintext: Buffer | string): Promise<string>;
  /** Opens a sealed value; throws CryptoError (KEY_DESTROYED, DECRYPT_FAILED, ...) and never returns partial plaintext. */
  open(scope: KeyScope, ref: SealRef, sealed: string): Promise<Buffer>;
  /** Crypto-shredding: destroys the tenant's DEKs (all of them, or one subject's). Returns how many. */
  destroyKeys(scope: KeyScope): Promise<number>;
  /** The active DEK id of a scope, creating it when missing. */
  activeDekId(scope: KeyScope): Promise<string>;
  /** Makes a new active DEK for the scope (the old one stays readable, retired). */
  replaceActiveDek(scope: KeyScope): Promise<{ from: string | null; to: string }>;
  /**
   * Crypto-shredding proved now (the trust report's DATA-3): a canary sealed under a new
   * personal-data key, the key destroyed, the canary opened again, all in one transaction that is
   * rolled back, so no row stays behind.
   */
  probeShredding(): Promise<ShreddingProbe>;
  /** Rewraps every DEK under the primary KEK; returns how many were rewrapped. */
  rewrapAll(options?: { dryRun?: boolean; onProgress?: (done: number, total: number) => void }): Promise<number>;
  /** Reloads the KEKs from the source (after a rotation on another node). */
  reloadKeks(): Promise<void>;
  primaryKekVersion(): number;
  status(): Promise<KeyStatus>;
  /**
   * Unwraps one platform data key per KEK version in use (nothing cached), so a node started with
   * the key-encryption keys of another database fails at once instead of at its first sealed
   * value. Throws CryptoError (DECRYPT_FAILED, KEK_MISSING); returns how many keys it unwrapped.
   */
  verifyKeks(): Promise<number>;
  /** Evicts cached DEKs of a tenant here and on every node. */
  invalidate(tenantId: string): Promise<void>;
  /** False while a remote KEK source (KMS) is not answering (readiness); always true for local KEKs. */
  kekHealthy(): boolean;
  /** Where the KEKs live when the node never holds them: a KMS or an HSM (PKCS#11); null for local KEKs. */
  remoteKeks(): 'kms' | 'hsm' | null;
  close(): Promise<void>;
}

export function dekAad(id: string, tenantId: string, subjectId: string, kekVersion: number): Buffer {
  return Buffer.from(`gatehouse.dek.v1\n${id}\n${tenantId}\n${subjectId}\n${kekVersion}`, 'utf8');
}

export function subjectOf(scope: KeyScope): string {
  return scope.subjectId ?? NO_SUBJECT;
}
