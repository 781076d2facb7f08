/**
 * Documentation attached to option schemas. Its own module so that the sections of the config
 * schema kept in other files of src/config (gateway.ts) can document their options too.
 */
import type { z } from 'zod';

export interface OptionMeta {
  doc: string;
  secret?: boolean;
  /** Extra environment variable names accepted for this option (lower precedence than GATEHOUSE_*). */
  aliases?: readonly string[];
}

const optionMeta = new WeakMap<z.ZodType, OptionMeta>();

/** Attaches documentation to an option's schema, which makes it a leaf option. */
export function opt<T extends z.ZodType>(schema: T, meta: OptionMeta): T {
  optionMeta.set(schema, meta);
  return schema;
}

/** The documentation of an option's schema, if it is a leaf option. */
export function metaOf(schema: z.ZodType): OptionMeta | undefined {
  return optionMeta.get(schema);
}

/** Refinement for a list of `{ id }` entries: each id at most once, the repeated one named. */
export function refineUniqueIds(list: readonly { id: string }[], ctx: z.RefinementCtx): void {
  const seen = new Set<string>();
  for (const entry of list) {
    if (seen.has(entry.id)) ctx.addIssue({ code: 'custom', message: `provider id "${entry.id}" is listed twice` });
    seen.add(entry.id);
  }
}
