/**
 * A workspace's guard policy: what the guard does with a verdict (off / flag / block / redact), its
 * thresholds, the rules switched off, whether the operator's system prompt is inspected too, and
 * the strike settings. Stored as JSON in guard_policies; a workspace without a row gets DEFAULT_POLICY.
 */
import { z } from 'zod';
import { DEFAULT_THRESHOLDS } from './guard.ts';
import { RULES } from './rules.ts';

/** What the guard does with a verdict. */
export const GUARD_MODES = ['off', 'flag', 'block', 'redact'] as const;
export type GuardMode = (typeof GUARD_MODES)[number];

const CATEGORY_PREFIXES = [...new Set(RULES.map((r) => `${r.name.split('.')[0]}.`))].concat('obfuscation.');
const SWITCHABLE = new Set<string>([...RULES.map((r) => r.name), ...CATEGORY_PREFIXES, 'classifier', 'external']);

const strikesSchema = z.strictObject({
  enabled: z.boolean(),
  /** Blocked attempts within the window that earn a temporary block. */
  threshold: z.number().int().min(1).max(100),
  windowSeconds: z.number().int().min(60).max(7 * 86_400),
  /** The first block's duration; each further block doubles it, up to maxBlockSeconds. */
  blockSeconds: z.number().int().min(10).max(86_400),
  maxBlockSeconds: z.number().int().min(60).max(30 * 86_400),
});

export const policySchema = z
  .strictObject({
    mode: z.enum(GUARD_MODES),
    flagThreshold: z.number().min(0.05).max(1),
    blockThreshold: z.number().min(0.05).max(1),
    /** Rule names, category prefixes (`jailbreak.`), `classifier` or `external`. */
    disabledRules: z.array(z.string().max(100).refine((name) => SWITCHABLE.has(name), 'not a guard rule name, category prefix, "classifier" or "external"')).max(100),
    /** Inspect the system prompt (system / developer messages) too; off by default: it is the operator's. */
    inspectSystem: z.boolean(),
    /** Ask the operator's external classifier (guard.external.url) when one is configured. */
    external: z.boolean(),
    strikes: strikesSchema,
  })
  .refine((p) => p.flagThreshold <= p.blockThreshold, { message: 'flagThreshold must not be above blockThreshold', path: ['flagThreshold'] })
  .refine((p) => p.strikes.blockSeconds <= p.strikes.maxBlockSeconds, { message: 'blockSeconds must not be above maxBlockSeconds', path: ['strikes', 'blockSeconds'] });

export type GuardPolicy = z.infer<typeof policySchema>;

/** What a PUT may send: any part of the policy; the rest stays as it was. */
export const policyPatchSchema = z.strictObject({
  mode: z.enum(GUARD_MODES).optional(),
  flagThreshold: z.number().min(0.05).max(1).optional(),
  blockThreshold: z.number().min(0.05).max(1).optional(),
  disabledRules: z.array(z.string().max(100)).max(100).optional(),
  inspectSystem: z.boolean().optional(),
  external: z.boolean().optional(),
  strikes: strikesSchema.partial().optional(),
});
export type GuardPolicyPatch = z.infer<typeof policyPatchSchema>;

export const DEFAULT_POLICY: GuardPolicy = Object.freeze({
  mode: 'block',
  flagThreshold: DEFAULT_THRESHOLDS.flag,
  blockThreshold: DEFAULT_THRESHOLDS.block,
  disabledRules: [],
  inspectSystem: false,
  external: true,
  strikes: { enabled: true, threshold: 5, windowSeconds: 3600, blockSeconds: 300, maxBlockSeconds: 86_400 },
}) as GuardPolicy;

/** `base` with `patch` applied, not yet validated (parse it with policySchema). */
export function mergePatch(base: GuardPolicy, patch: GuardPolicyPatch): unknown {
  return { ...base, ...patch, strikes: { ...base.strikes, ...patch.strikes } };
}

/** A stored policy read back; a row that no longer validates (a rule was renamed) keeps its valid parts. */
export function parseStored(raw: unknown): GuardPolicy {
  const parsed = policySchema.safeParse(raw);
  if (parsed.success) return parsed.data;
  const partial = raw as Partial<GuardPolicy>;
  const rules = Array.isArray(partial.disabledRules) ? partial.disabledRules.filter((r) => SWITCHABLE.has(r)) : [];
  const retry = policySchema.safeParse({ ...DEFAULT_POLICY, ...partial, disabledRules: rules });
  return retry.success ? retry.data : DEFAULT_POLICY;
}
