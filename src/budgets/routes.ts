/**
 * The budgets API (ABUSE-2): `/v1/orgs/:org/budgets` (admins set and delete; members read use,
 * remaining and reset time) and `POST /v1/budgets/consume`, with which the application in front of
 * which Gatehouse runs meters its own files and messages against the same budgets.
 */
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { orgIdOf, userIdOf } from '../server/principal.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import { BUDGET_CATEGORIES, BUDGET_ERROR_CODES, BUDGET_PERIODS, MAX_BUDGET_LIMIT } from './categories.ts';
import type { Definitions } from './definitions.ts';
import type { BudgetEngine } from './engine.ts';

const orgParams = z.strictObject({ org: z.uuid() });
const budgetParams = z.strictObject({ org: z.uuid(), budget: z.uuid() });
const limit = z.number().int().min(0).max(MAX_BUDGET_LIMIT);

const budgetView = z.object({
  id: z.string(),
  workspaceId: z.string().nullable(),
  apiKeyId: z.string().nullable(),
  category: z.enum(BUDGET_CATEGORIES),
  period: z.enum(BUDGET_PERIODS),
  hardLimit: z.number(),
  softLimit: z.number().nullable(),
  version: z.number(),
  updatedAt: z.string(),
  used: z.number(),
  remaining: z.number(),
  resetAt: z.string(),
});

const setBody = z
  .strictObject({
    category: z.enum(BUDGET_CATEGORIES),
    period: z.enum(BUDGET_PERIODS),
    workspaceId: z.uuid().nullable().default(null),
    apiKeyId: z.string().regex(/^[0-9A-Za-z]{16}$/).nullable().default(null),
    hardLimit: limit,
    softLimit: limit.nullable().default(null),
    ifVersion: z.number().int().min(0).max(2_147_483_647).optional(),
  })
  .refine((b) => b.softLimit === null || b.softLimit <= b.hardLimit, { message: 'softLimit must not be above hardLimit', path: ['softLimit'] })
  .refine((b) => b.apiKeyId === null || b.workspaceId !== null, { message: 'an API key budget names the key\'s workspace', path: ['workspaceId'] });

const count = z.number().int().min(0).max(1_000_000);
const consumeBody = z
  .strictObject({ files: count.optional(), fileBytes: z.number().int().min(0).max(MAX_BUDGET_LIMIT).optional(), messages: count.optional() })
  .refine((b) => (b.files ?? 0) + (b.fileBytes ?? 0) + (b.messages ?? 0) > 0, { message: 'name at least one of files, fileBytes, messages above 0' });

export function createBudgetsFeature(deps: { definitions: Definitions; engine: BudgetEngine }): Feature {
  const { definitions, engine } = deps;

  async function withUse(orgId: string) {
    const budgets = await definitions.forOrg(orgId);
    return Promise.all(budgets.map(async ({ orgId: _org, ...b }) => ({ ...b, ...(await engine.useOf({ orgId, ...b })) })));
  }

  return {
    id: 'budgets',
    errorCodes: BUDGET_ERROR_CODES,
    routes: [
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/budgets',
        summary: 'The org\'s budgets with their use in the current UTC day or month, what remains and when the period resets.',
        guard: { kind: 'session' },
        permission: 'budgets.read',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.object({ budgets: z.array(budgetView) }) } },
        handler: async ({ authority }) => ({ budgets: await withUse(orgIdOf(authority)) }),
      }),
      defineRoute({
        method: 'PUT',
        url: '/v1/orgs/:org/budgets',
        summary:
          'Create or change the budget of a scope (the org, a workspace, or an API key), category and period. Applies to the next call on every node. A limit below the current use is allowed: calls are refused from then on.',
        guard: { kind: 'session' },
        permission: 'budgets.manage',
        rateCategory: 'write',
        schema: { params: orgParams, body: setBody, response: { 200: budgetView } },
        handler: async ({ authority, principal, body }) => {
          const orgId = orgIdOf(authority);
          const { orgId: _org, ...budget } = await definitions.set(orgId, userIdOf(principal), body);
          return { ...budget, ...(await engine.useOf({ orgId, ...budget })) };
        },
      }),
      defineRoute({
        method: 'DELETE',
        url: '/v1/orgs/:org/budgets/:budget',
        summary: 'Delete a budget. Calls stop counting against it on every node at once.',
        guard: { kind: 'session' },
        permission: 'budgets.manage',
        rateCategory: 'write',
        schema: { params: budgetParams, response: { 204: z.null() } },
        handler: async ({ authority, params, reply }) => {
          await definitions.remove(orgIdOf(authority), params.budget);
          reply.code(204);
          return null;
        },
      }),
      defineRoute({
        method: 'POST',
        url: '/v1/budgets/consume',
        summary:
          'For the application in front of Gatehouse: count files, file bytes or messages it is about to store or send against the key\'s org, workspace and key budgets, all or nothing. 429 with the category\'s code and Retry-After when a hard limit would be passed.',
        guard: { kind: 'apiKey', scope: 'budgets:consume' },
        permission: null,
        rateCategory: 'write',
        budgets: ['files', 'file_bytes', 'messages'],
        schema: { body: consumeBody, response: { 200: z.object({ consumed: z.object({ files: z.number(), fileBytes: z.number(), messages: z.number() }) }) } },
        handler: async ({ principal, body, request, reply }) => {
          if (!principal || principal.kind !== 'apiKey' || !principal.tenantId || !principal.workspaceId) throw new AppError('UNAUTHENTICATED');
          const amounts = { files: body.files ?? 0, file_bytes: body.fileBytes ?? 0, messages: body.messages ?? 0 };
          const reservation = await engine.reserve({ orgId: principal.tenantId, workspaceId: principal.workspaceId, apiKeyId: principal.id, amounts, requestId: request.id });
          // What the app reports is what it used: the reservation settles at once, in full.
          await reservation.settle(amounts);
          for (const [name, value] of Object.entries(reservation.headers)) void reply.header(name, value);
          return { consumed: { files: amounts.files, fileBytes: amounts.file_bytes, messages: amounts.messages } };
        },
      }),
    ],
  };
}
