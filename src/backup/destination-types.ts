/** A backup destination's interface (destination.ts builds them). */
import type { OuterManifest } from './manifest.ts';

export interface ListedBackup {
  id: string;
  /** Undefined: the archive exists without its manifest (cut off while written). */
  outer?: OuterManifest;
}

export interface Destination {
  /** Where, safe to print (no credentials). */
  readonly describe: string;
  /** Stores the encrypted file written at `localFile` (then removed), then its manifest last. */
  put(id: string, localFile: string, outer: OuterManifest): Promise<void>;
  /** A local path the encrypted archive is written to first. */
  stagingPath(id: string): Promise<string>;
  list(): Promise<ListedBackup[]>;
  /** The manifest (BACKUP_NOT_FOUND / BACKUP_INCOMPLETE) and a reader of the archive. */
  open(id: string): Promise<{ outer: OuterManifest; bytes: number; read: () => AsyncIterable<Uint8Array> }>;
  remove(id: string): Promise<void>;
}

