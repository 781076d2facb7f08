/**
 * How every admin route reads its caller and scope (src/server/principal.ts): a caller that is not
 * a signed-in user is refused (401 UNAUTHENTICATED); a route that ran without the authority its
 * permission implies is a wiring bug (a plain Error, so a 500), never a refusal or a wrong scope.
 */
import { describe, expect, it } from 'vitest';
import { AppError } from '../../src/server/errors.ts';
import { orgIdOf, orgScopeOf, userIdOf, userSessionOf, workspaceScopeOf } from '../../src/server/principal.ts';
import type { Principal } from '../../src/server/route.ts';

const isRole = (value: unknown): value is 'owner' | 'viewer' => value === 'owner' || value === 'viewer';

function unauthenticated(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).code).toBe('UNAUTHENTICATED');
    expect((error as AppError).status).toBe(401);
    return;
  }
  throw new Error('expected UNAUTHENTICATED');
}

describe('route principal and scope helpers', () => {
  const user: Principal = { kind: 'user', id: 'u1', sessionId: 's1' };

  it('attack: an API key, a webhook or no principal on a user route is refused with 401 UNAUTHENTICATED', () => {
    for (const p of [undefined, { kind: 'apiKey', id: 'k1' }, { kind: 'webhook', id: 'w1' }, { kind: 'service', id: 'x' }] as (Principal | undefined)[]) {
      unauthenticated(() => userIdOf(p));
      unauthenticated(() => userSessionOf(p));
    }
    unauthenticated(() => userSessionOf({ kind: 'user', id: 'u1' }));
  });

  it('returns the user id, and the session where one is required', () => {
    expect(userIdOf(user)).toBe('u1');
    expect(userIdOf({ kind: 'user', id: 'u1' })).toBe('u1');
    expect(userSessionOf(user)).toEqual({ userId: 'u1', sessionId: 's1' });
  });

  it('returns the org, the workspace, the role the authorizer found', () => {
    expect(orgIdOf({ tenantId: 'o1' })).toBe('o1');
    expect(workspaceScopeOf({ tenantId: 'o1', workspaceId: 'w1' })).toEqual({ orgId: 'o1', wsId: 'w1' });
    expect(orgScopeOf({ tenantId: 'o1', role: 'viewer' }, isRole)).toEqual({ orgId: 'o1', role: 'viewer' });
  });

  it('a missing or partial authority is a wiring bug (plain Error), not a refusal', () => {
    const wiring = (fn: () => unknown, message: string) => {
      expect(fn).toThrow(message);
      try {
        fn();
      } catch (error) {
        expect(error).not.toBeInstanceOf(AppError);
      }
    };
    wiring(() => orgIdOf(undefined), 'tenant route ran without an authority');
    wiring(() => orgIdOf({}), 'tenant route ran without an authority');
    wiring(() => workspaceScopeOf({ tenantId: 'o1' }), 'workspace route ran without an authority');
    wiring(() => workspaceScopeOf(undefined), 'workspace route ran without an authority');
    wiring(() => orgScopeOf({ tenantId: 'o1' }, isRole), 'tenant route ran without an authority');
    wiring(() => orgScopeOf({ tenantId: 'o1', role: 'superuser' }, isRole), 'tenant route ran without an authority');
  });
});
