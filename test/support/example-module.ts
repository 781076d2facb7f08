/**
 * The worked example of docs/architecture.md ("Adding a feature"): a small feature built through
 * the module contract. test/architecture/example-module.test.ts runs it on a real node and checks
 * that the guide shows this code verbatim (everything below the marker line).
 */
// --- guide example starts here ---
import { z } from 'zod';
import { AUDIT } from '../../src/audit/index.ts';
import { ACCOUNT_CLEANUP, IDENTITY } from '../../src/identity/index.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { AppError } from '../../src/server/errors.ts';
import { defineModule, hook, moduleRef } from '../../src/server/module.ts';
import { defineRoute } from '../../src/server/route.ts';

/** What other modules get from ctx.use(NOTES). */
export interface Notes {
  count(userId: string): number;
}

export const NOTES = moduleRef<Notes>('notes');

export const notesModule = defineModule({
  ref: NOTES,
  dependsOn: [AUDIT, IDENTITY],
  // The audit actions it records: the audit log refuses any action no module declares.
  auditActions: ['notes.added'],
  create: (ctx) => {
    const audit = ctx.use(AUDIT);
    // A real feature keeps its rows in its own tables (one migration); a map keeps the example short.
    const notes = new Map<string, string[]>();
    return {
      api: { count: (userId) => notes.get(userId)?.length ?? 0 },
      feature: {
        id: 'notes',
        errorCodes: { NOTES_FULL: { status: 409, message: 'This account has too many notes.', doc: 'At most 3 notes per account.' } },
        routes: [
          defineRoute({
            method: 'POST',
            url: '/v1/me/notes',
            summary: 'Add a note to the signed-in account.',
            guard: { kind: 'session' },
            permission: null,
            rateCategory: 'write',
            schema: { body: z.strictObject({ text: z.string().trim().min(1).max(200) }), response: { 201: z.object({ count: z.number() }) } },
            handler: async ({ body, principal, reply }) => {
              const userId = (principal as { id: string }).id;
              const list = notes.get(userId) ?? [];
              if (list.length >= 3) throw new AppError('NOTES_FULL');
              notes.set(userId, [...list, body.text]);
              await audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'notes.added', target: { type: 'user', id: userId } });
              void reply.code(201);
              return { count: list.length + 1 };
            },
          }),
        ],
      },
      // Identity offers the hook point; deleting an account now forgets its notes.
      hooks: [hook(ACCOUNT_CLEANUP, async (userId) => void notes.delete(userId))],
      jobs: [{ name: 'notes.tally', schedule: '0 3 * * *', summary: 'Counts the notes kept.', run: async () => ({ accounts: notes.size, at: new Date(ctx.now()).toISOString() }) }],
      close: async () => notes.clear(),
    };
  },
});
