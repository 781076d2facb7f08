/** The keyring's public surface: the JWKS that verifiers of access tokens and audit checkpoints fetch. */
import { z } from 'zod';
import { defineRoute, type Feature } from '../server/route.ts';

const jwk = z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string(), alg: z.literal('EdDSA'), use: z.literal('sig') });

export const keyringFeature: Feature = {
  id: 'keyring',
  sealedColumns: [{ table: 'signing_keys', column: 'private_sealed', idColumn: 'kid', tenantColumn: null }],
  routes: [
    defineRoute({
      method: 'GET',
      url: '/.well-known/jwks.json',
      summary: 'Public signing keys (current, next and previous) for access tokens and audit checkpoints.',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      schema: { response: { 200: z.object({ keys: z.array(jwk) }) } },
      handler: async ({ services, reply }) => {
        // Verifiers may cache briefly; a new key is published a full rotation before it signs.
        reply.header('cache-control', 'public, max-age=300');
        return services.signingKeys.jwks();
      },
    }),
  ],
};
