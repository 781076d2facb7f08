/**
 * The `tokens` section of the configuration (GW-6): lifetimes and clock tolerance of the
 * short-lived client tokens the gateway accepts in place of an API key. It lives in src/config
 * (the config schema imports no feature); the tokens feature reads it as `config.tokens`.
 */
import { z } from 'zod';
import { opt } from './option-meta.ts';

export const tokensSection = z
  .strictObject({
    defaultTtlSeconds: opt(z.number().int().min(60).max(3600).default(600), {
      doc: 'Lifetime of a client token minted without `ttlSeconds` (POST /v1/tokens).',
    }),
    maxTtlSeconds: opt(z.number().int().min(60).max(3600).default(3600), {
      doc: 'Longest lifetime a client token may be minted with; at most an hour.',
    }),
    clockSkewSeconds: opt(z.number().int().min(0).max(60).default(5), {
      doc: 'Clock difference tolerated between nodes when checking a client token\'s exp and iat: a token is refused once its exp is this many seconds past.',
    }),
  })
  .superRefine((v, ctx) => {
    if (v.defaultTtlSeconds > v.maxTtlSeconds) ctx.addIssue({ code: 'custom', message: 'defaultTtlSeconds must not exceed maxTtlSeconds', path: ['defaultTtlSeconds'] });
  })
  .prefault({});

export type TokensConfig = z.infer<typeof tokensSection>;
