/**
 * Reading an org's audit log (AUDIT-2, AUDIT-3): events, checkpoints, proofs and the export, for
 * admins and owners (`audit.read`).
 */
import { Readable } from 'node:stream';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { orgIdOf } from '../server/principal.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import type { AuditLog } from './log.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';

const orgParams = z.strictObject({ org: z.uuid() });
const seqNumber = z.coerce.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const checkpointSchema = z.object({
  checkpoint: z.object({ log: z.string(), size: z.number(), root: z.string(), previous: z.string().nullable(), kid: z.string(), time: z.string() }),
  signature: z.string(),
});

/** The list filter; `action` is one of the actions the modules declare (anything else is a 400). */
function listQuerySchema(actions: readonly string[]) {
  return z.strictObject({
    actor: z.string().min(1).max(100).optional(),
    action: z.enum(actions as [string, ...string[]]).optional(),
    from: z.iso.datetime().optional(),
    to: z.iso.datetime().optional(),
    cursor: seqNumber.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  });
}

type ListQuery = z.output<ReturnType<typeof listQuerySchema>>;

function listFilters(query: ListQuery) {
  return {
    ...(query.actor ? { actor: query.actor } : {}),
    ...(query.action ? { action: query.action } : {}),
    ...(query.from ? { from: new Date(query.from) } : {}),
    ...(query.to ? { to: new Date(query.to) } : {}),
    ...(query.cursor !== undefined ? { cursor: query.cursor } : {}),
    limit: query.limit,
  };
}

export function createAuditFeature(log: AuditLog): Feature {
  const listQuery = listQuerySchema([...log.actions]);
  return {
    id: 'audit',
    routes: [
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/audit',
        summary: 'Audit events, newest first; filter by actor id, action and time; `cursor` is the `nextCursor` of the previous page.',
        guard: { kind: 'session' },
        permission: 'audit.read',
        rateCategory: 'read',
        schema: {
          params: orgParams,
          querystring: listQuery,
          response: { 200: z.object({ events: z.array(z.record(z.string(), z.unknown())), nextCursor: z.number().nullable() }) },
        },
        handler: async ({ authority, query }) => log.list(orgIdOf(authority), listFilters(query)),
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/audit/checkpoints',
        summary: 'Signed checkpoints, newest first. Verify them with the audit-checkpoint keys of /.well-known/jwks.json.',
        guard: { kind: 'session' },
        permission: 'audit.read',
        rateCategory: 'read',
        schema: {
          params: orgParams,
          querystring: z.strictObject({ cursor: seqNumber.optional(), limit: z.coerce.number().int().min(1).max(500).default(100) }),
          response: { 200: z.object({ checkpoints: z.array(checkpointSchema), nextCursor: z.number().nullable() }) },
        },
        handler: async ({ authority, query }) => log.checkpoints(orgIdOf(authority), { ...(query.cursor !== undefined ? { cursor: query.cursor } : {}), limit: query.limit }),
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/audit/proof/inclusion',
        summary: 'RFC 6962 inclusion proof of event `index` in the tree of the first `size` events, with the checkpoint of that size if one was signed.',
        guard: { kind: 'session' },
        permission: 'audit.read',
        rateCategory: 'read',
        schema: {
          params: orgParams,
          querystring: z.strictObject({ index: seqNumber, size: seqNumber }),
          response: {
            200: z.object({ index: z.number(), size: z.number(), leafHash: z.string(), proof: z.array(z.string()), root: z.string(), checkpoint: checkpointSchema.nullable() }),
          },
        },
        handler: async ({ authority, query }) => {
          const proof = await log.inclusion(orgIdOf(authority), query.index, query.size);
          if (!proof) throw new AppError('BAD_REQUEST', 'index must be below size, and size at most the log\'s size.');
          return proof;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/audit/proof/consistency',
        summary: 'RFC 6962 consistency proof that the tree of the first `to` events extends the tree of the first `from`.',
        guard: { kind: 'session' },
        permission: 'audit.read',
        rateCategory: 'read',
        schema: {
          params: orgParams,
          querystring: z.strictObject({ from: seqNumber, to: seqNumber }),
          response: { 200: z.object({ from: z.number(), to: z.number(), proof: z.array(z.string()), fromRoot: z.string(), toRoot: z.string() }) },
        },
        handler: async ({ authority, query }) => {
          const proof = await log.consistency(orgIdOf(authority), query.from, query.to);
          if (!proof) throw new AppError('BAD_REQUEST', 'Need 1 <= from <= to <= the log\'s size.');
          return proof;
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/admin/audit',
        summary: 'Operators: the platform log (sign-ins, accounts, operator and key actions), newest first, same filters as an org\'s log.',
        guard: { kind: 'session' },
        permission: 'platform.audit.read',
        rateCategory: 'read',
        schema: {
          querystring: listQuery,
          response: { 200: z.object({ events: z.array(z.record(z.string(), z.unknown())), nextCursor: z.number().nullable() }) },
        },
        handler: async ({ query }) => log.list(PLATFORM_TENANT_ID, listFilters(query)),
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/admin/audit/export',
        summary: 'Operators: the platform log as JSON Lines, for `gatehouse audit verify`.',
        guard: { kind: 'session' },
        permission: 'platform.audit.read',
        rateCategory: 'read',
        schema: { response: { 200: z.string() } },
        handler: async ({ reply }) => {
          reply.type('application/x-ndjson; charset=utf-8').header('content-disposition', 'attachment; filename="audit-platform.jsonl"');
          return Readable.from(log.exportLines(PLATFORM_TENANT_ID), { objectMode: false });
        },
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/orgs/:org/audit/export',
        summary: 'The whole log as JSON Lines (events, checkpoints, public keys), streamed; check it offline with `gatehouse audit verify`.',
        guard: { kind: 'session' },
        permission: 'audit.read',
        rateCategory: 'read',
        schema: { params: orgParams, response: { 200: z.string() } },
        handler: async ({ authority, reply }) => {
          const org = orgIdOf(authority);
          reply.type('application/x-ndjson; charset=utf-8').header('content-disposition', `attachment; filename="audit-${org}.jsonl"`);
          return Readable.from(log.exportLines(org), { objectMode: false });
        },
      }),
    ],
  };
}
