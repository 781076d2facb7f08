import { describe, expect, it } from 'vitest';
import { can, canGrant, compareRoles, effectiveWorkspaceRole, isPermission, isRole, PERMISSIONS, ROLE_PERMISSIONS, ROLES, type Role } from '../../src/tenancy/permissions.ts';

describe('the role matrix', () => {
  it('is monotonic: every role holds everything the role below it holds', () => {
    const ordered = [...ROLES].sort(compareRoles);
    expect(ordered).toEqual(['owner', 'admin', 'editor', 'viewer']);
    for (let i = 0; i < ordered.length - 1; i++) {
      const higher = ROLE_PERMISSIONS[ordered[i] as Role];
      for (const p of ROLE_PERMISSIONS[ordered[i + 1] as Role]) expect(higher.has(p), `${ordered[i]} lacks ${p}`).toBe(true);
    }
  });

  it('only the owner may delete or transfer the organization', () => {
    for (const role of ROLES) {
      expect(can(role, 'org.delete')).toBe(role === 'owner');
      expect(can(role, 'org.transfer')).toBe(role === 'owner');
    }
  });

  it('viewers only read; editors add API keys; members and providers need admin', () => {
    expect([...ROLE_PERMISSIONS.viewer].every((p) => p.endsWith('.read'))).toBe(true);
    expect(can('viewer', 'apikeys.manage')).toBe(false);
    expect(can('editor', 'apikeys.manage')).toBe(true);
    expect(can('editor', 'members.manage')).toBe(false);
    expect(can('editor', 'providers.manage')).toBe(false);
    expect(can('admin', 'members.manage')).toBe(true);
    expect(can('admin', 'providers.manage')).toBe(true);
  });

  it('every permission is held by the owner (nothing unreachable)', () => {
    for (const p of PERMISSIONS) expect(can('owner', p), p).toBe(true);
  });

  it('attack: nobody grants a role above their own', () => {
    for (const actor of ROLES) {
      for (const target of ROLES) {
        expect(canGrant(actor, target), `${actor} -> ${target}`).toBe(compareRoles(actor, target) <= 0);
      }
    }
    expect(canGrant('admin', 'owner')).toBe(false);
    expect(canGrant('owner', 'owner')).toBe(true);
  });

  it('a workspace role narrows the org role and never widens it', () => {
    expect(effectiveWorkspaceRole('admin', 'viewer')).toBe('viewer');
    expect(effectiveWorkspaceRole('viewer', 'owner')).toBe('viewer');
    expect(effectiveWorkspaceRole('editor', null)).toBe('editor');
    for (const org of ROLES) for (const ws of ROLES) expect(compareRoles(effectiveWorkspaceRole(org, ws), org)).toBeGreaterThanOrEqual(0);
  });

  it('refuses names outside the enums', () => {
    expect(isRole('owner')).toBe(true);
    expect(isRole('superadmin')).toBe(false);
    expect(isRole('__proto__')).toBe(false);
    expect(isPermission('org.read')).toBe(true);
    expect(isPermission('org.*')).toBe(false);
  });
});
