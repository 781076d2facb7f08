/**
 * `keyring.kms` (DATA-1): key-encryption keys that stay in AWS KMS (or a service speaking its API).
 * Each KEK version names a KMS key; the highest version is primary. The node asks the KMS to make,
 * wrap and unwrap data keys and never holds a KEK (src/crypto/kms-kek.ts).
 */
import { z } from 'zod';
import { opt } from './option-meta.ts';
import { httpUrlSchema } from './url.ts';

export const kmsSection = z
  .strictObject({
    keys: opt(
      z
        .record(z.string().regex(/^[1-9][0-9]{0,9}$/, 'a KEK version: a positive integer'), z.string().min(1).max(2048))
        .refine((m) => Object.keys(m).length > 0, 'name at least one version')
        .optional(),
      {
        doc: 'KEK versions in AWS KMS, as JSON: `{"1": "arn:aws:kms:eu-west-1:111122223333:key/..."}`; the highest version is primary. Set: KEKs stay in the KMS (masterKeys and keyFile must be unset), the start calls the KMS for every version and refuses to start when it cannot (KEK_UNAVAILABLE, KEK_ACCESS_DENIED, KEK_MISSING). Rotation: create a KMS key, add it as the next version, restart, `gatehouse keys rotate kek`.',
      },
    ),
    endpoint: opt(httpUrlSchema().optional(), { doc: 'The KMS endpoint, e.g. `https://kms.eu-west-1.amazonaws.com`.' }),
    region: opt(z.string().regex(/^[a-z0-9-]{2,32}$/).optional(), { doc: 'The AWS region the requests are signed for (SigV4).' }),
    accessKeyId: opt(z.string().min(1).max(128).optional(), { doc: 'AWS access key id for the KMS.', secret: true }),
    secretAccessKey: opt(z.string().min(1).max(256).optional(), { doc: 'AWS secret access key for the KMS.', secret: true }),
    sessionToken: opt(z.string().min(1).max(4096).optional(), { doc: 'AWS session token (temporary credentials), when the credentials need one.', secret: true }),
    timeoutMs: opt(z.number().int().min(100).max(30_000).default(2000), {
      doc: 'Longest wait for one KMS call. A KMS that does not answer in time fails the request that needed an uncached data key with 503 (never a local fallback); cached data keys serve for keyring.cacheTtlSeconds.',
    }),
  })
  .prefault({});
