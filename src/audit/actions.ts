/**
 * The audit actions of the audit feature itself and of the parts of Gatehouse that are not feature
 * modules (AUDIT-1). Every feature declares its own in its module (`auditActions`, e.g.
 * src/tenancy/audit-actions.ts); the module runtime hands the complete list to the audit log
 * (`ModuleContext.auditActions`), which refuses any action no module declares.
 */
export const AUDIT_OWN_ACTIONS = [
  // A node started (platform log): the fingerprint of its effective configuration (secrets masked) shows changes between starts.
  'node.started',
  // Key rotations (platform log), recorded by `gatehouse keys rotate` (src/keyring is infrastructure, not a module).
  'keys.rotated',
] as const;

/** An audit action: one a listed module declares (checked when the event is prepared). */
export type AuditAction = string;
