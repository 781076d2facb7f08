/**
 * The audit hook identity's parts share, in a module of its own so that sessions, MFA and passkeys
 * need not import accounts.ts, which imports them (no import cycles; test/architecture/imports.test.ts).
 */
import type { AuditAction } from '../audit/index.ts';

/** An account event for the platform audit log: the subject user (null when unknown), non-personal details. */
export type IdentityAudit = (action: AuditAction, subjectUserId: string | null, data?: Record<string, string | number | boolean | null>) => Promise<void>;
