/** The shapes of the audit log (AUDIT-1): what a caller records, what is prepared, what is read back. */
import type { Signer } from '../keyring/signing-keys.ts';
import type { AuditAction } from './actions.ts';

export interface AuditActor {
  /** anonymous: an unauthenticated request; system: no request (CLI, timers). */
  type: 'user' | 'apiKey' | 'service' | 'webhook' | 'anonymous' | 'system';
  id: string | null;
}

export interface AuditInput {
  /** The log: an org id, or the platform tenant id. */
  tenantId: string;
  /** One of the actions the modules declare (refused otherwise). */
  action: AuditAction;
  target?: { type: string; id: string } | null;
  /** Non-personal details. Personal data goes only in the sealed ip/ua fields. */
  data?: Record<string, string | number | boolean | null>;
  /** Who acted, when not the current request's principal. */
  actor?: AuditActor;
  /**
   * false: record no IP or user agent. For an event after the log's data keys were destroyed,
   * where sealing would create a new key for a tenant that was just shredded.
   */
  personal?: boolean;
}

/** An event as read back: personal fields opened (null once their key was shredded). */
export interface AuditEventView {
  v: number;
  id: string;
  log: string;
  seq: number;
  time: string;
  action: string;
  actor: AuditActor;
  target: { type: string; id: string } | null;
  requestId: string | null;
  ip: string | null;
  ua: string | null;
  data: Record<string, unknown>;
}

export interface PreparedEvent {
  tenantId: string;
  event: Record<string, unknown>;
  actorId: string | null;
  time: Date;
  signer: Signer;
}

export interface AuditSettings {
  checkpointEvery: number;
  checkpointSeconds: number;
  retentionDays: number;
}
