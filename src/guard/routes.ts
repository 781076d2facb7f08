/**
 * The guard's routes: a workspace's guard policy (members read it, admins set it) and the
 * workspace's temporary blocks (admins list and lift them). Every change is an audit event.
 */
import { z } from 'zod';
import type { AuditLog } from '../audit/index.ts';
import { AppError } from '../server/errors.ts';
import { userIdOf, workspaceScopeOf } from '../server/principal.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import { GUARD_ERROR_CODES } from './error-codes.ts';
import { mergePatch, policyPatchSchema, policySchema } from './policy.ts';
import type { GuardStore } from './store.ts';

const wsParams = z.strictObject({ org: z.uuid(), ws: z.uuid() });
const subjectParams = z.strictObject({ org: z.uuid(), ws: z.uuid(), subject: z.string().regex(/^(key:[0-9A-Za-z]{16}|user:[0-9a-f]{32})$/) });
const policyView = z.object({ policy: policySchema, stored: z.boolean() });
const strikeView = z.object({ subject: z.string(), strikes: z.number(), level: z.number(), blockedUntil: z.string().nullable(), lastBlockedAt: z.string().nullable() });

/** The guard feature: routes and error codes. */
export function createGuardFeature(deps: { store: GuardStore; audit: AuditLog }): Feature {
  const { store, audit } = deps;
  return {
    id: 'guard',
    errorCodes: GUARD_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/guard-policy',
        summary: 'The workspace\'s input guard policy (the default when none was set).',
        guard: { kind: 'session' },
        permission: 'workspaces.read',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: policyView } },
        handler: async ({ authority }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          const stored = await store.hasStoredPolicy(orgId, wsId);
          return { policy: await store.loadPolicy(orgId, wsId, { fresh: true }), stored };
        },
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/workspaces/:ws/guard-policy',
        summary: 'Change the workspace\'s input guard policy: mode (off / flag / block / redact), thresholds, rules switched off, strike settings. Fields not sent keep their value.',
        guard: { kind: 'session' },
        permission: 'guard.manage',
        rateCategory: 'write',
        schema: { params: wsParams, body: policyPatchSchema, response: { 200: policyView } },
        handler: async ({ authority, principal, body }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          const current = await store.loadPolicy(orgId, wsId, { fresh: true });
          const parsed = policySchema.safeParse(mergePatch(current, body));
          if (!parsed.success) throw new AppError('VALIDATION_FAILED', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ').slice(0, 500));
          const policy = parsed.data;
          await store.savePolicy(orgId, wsId, userIdOf(principal), policy);
          await audit.record({
            tenantId: orgId,
            action: 'guard.policy.changed',
            target: { type: 'workspace', id: wsId },
            data: { mode: policy.mode, flagThreshold: policy.flagThreshold, blockThreshold: policy.blockThreshold, disabledRules: policy.disabledRules.join(',') || null, strikes: policy.strikes.enabled, strikeThreshold: policy.strikes.threshold },
          });
          return { policy, stored: true };
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/workspaces/:ws/guard-blocks',
        summary: 'API keys and end users of the workspace with guard strikes or a temporary block.',
        guard: { kind: 'session' },
        permission: 'guard.manage',
        rateCategory: 'read',
        schema: { params: wsParams, response: { 200: z.object({ subjects: z.array(strikeView) }) } },
        handler: async ({ authority }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          return { subjects: await store.listStrikes(orgId, wsId) };
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/workspaces/:ws/guard-blocks/:subject',
        summary: 'Lift the temporary block of an API key (`key:<id>`) or end user (`user:<sha-256 hex, 32 chars>`) and clear its strikes, on every node at once.',
        guard: { kind: 'session' },
        permission: 'guard.manage',
        rateCategory: 'write',
        schema: { params: subjectParams, response: { 204: z.null() } },
        handler: async ({ authority, params, reply }) => {
          const { orgId, wsId } = workspaceScopeOf(authority);
          if (!(await store.lift(orgId, wsId, params.subject))) throw new AppError('GUARD_SUBJECT_NOT_FOUND');
          await audit.record({ tenantId: orgId, action: 'guard.block.lifted', target: { type: 'workspace', id: wsId }, data: { subject: params.subject } });
          void reply.code(204);
          return null;
        },
      }),
    ],
  };
}
