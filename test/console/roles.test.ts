/**
 * The console hides the controls a member's role does not allow (the API stays the authority).
 * Its table of the least role per form permission is a copy of the server's matrix: this fails
 * when the two disagree for any role, so a change to the matrix cannot leave a form shown to a
 * role the API refuses (or hidden from one it allows).
 */
import { describe, expect, it } from 'vitest';
import { allows, LEAST_ROLE, type FormPermission } from '../../console/src/api/roles.ts';
import { can, isPermission, ROLES } from '../../src/tenancy/permissions.ts';

describe('console role table', () => {
  it('agrees with the role matrix for every role and every permission a console form needs', () => {
    for (const permission of Object.keys(LEAST_ROLE) as FormPermission[]) {
      expect(isPermission(permission), permission).toBe(true);
      for (const role of ROLES) expect([permission, role, allows(role, permission)]).toEqual([permission, role, can(role, permission as Parameters<typeof can>[1])]);
    }
  });

  it('shows a form read-only for an unknown or missing role (never the other way round)', () => {
    for (const role of ['', 'superuser', undefined]) expect(allows(role, 'apikeys.manage')).toBe(false);
  });
});
