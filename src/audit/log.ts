/**
 * The audit log in the database (AUDIT-1..4): appends with gapless sequence numbers, the
 * RFC 6962 tree kept as perfect-subtree heads, signed checkpoints, proofs, reads, export and
 * retention.
 *
 * An append happens in two steps so it can share the caller's transaction: `prepare` seals the
 * personal fields and fetches the signer (both reach the database, so they run before the
 * transaction opens); `append(tx, prepared)` then takes the next seq under the log's head-row
 * lock, stores the event and its tree nodes, and checkpoints when one is due. `record` does both
 * in a transaction of its own.
 */
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import { createAuditAppender } from './log-append.ts';
import { createAuditExport } from './log-export.ts';
import { createGroupCommit } from './log-group-commit.ts';
import { createAuditReader } from './log-read.ts';
import { createCheckpointer } from './log-tree.ts';
import type { AuditSettings } from './log-types.ts';

export { rootOfFrontier } from './log-tree.ts';
export type { AuditActor, AuditEventView, AuditInput, AuditSettings, PreparedEvent } from './log-types.ts';

/**
 * `actions`: every audit action the modules declare (ModuleContext.auditActions); recording any
 * other is refused. A log opened only to read, prune or export may pass none.
 */
export function createAuditLog(deps: { db: Db; keyring: Keyring; signingKeys: SigningKeys; settings: AuditSettings; actions?: Iterable<string>; now: () => number }) {
  const { db, keyring, signingKeys, settings, now } = deps;
  const actions: ReadonlySet<string> = new Set(deps.actions ?? []);
  const checkpointer = createCheckpointer(settings, now);
  const appender = createAuditAppender({ db, keyring, signingKeys, checkpointer, actions, now });
  const { prepare, append, checkpointIfBehind } = appender;
  const { record } = createGroupCommit({ db, appender });
  const { size, list, checkpoints, inclusion, consistency } = createAuditReader({ db, keyring, checkpointIfBehind });
  const { exportLines, prune, logs } = createAuditExport({ db, signingKeys, settings, now, checkpointIfBehind });
  return { actions, prepare, append, record, checkpointIfBehind, size, list, checkpoints, inclusion, consistency, exportLines, prune, logs };
}

export type AuditLog = ReturnType<typeof createAuditLog>;
