/**
 * The `social` section of the configuration (AUTH-8): the social sign-in providers the operator
 * enabled. Endpoints of the four named providers come from presets; client secrets are secrets
 * (environment only), kept apart from the provider list so the list may live in the config file.
 */
import { z } from 'zod';
import { opt, refineUniqueIds } from './option-meta.ts';
import { httpUrlSchema } from './url.ts';

const providerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'lowercase letters, digits and "-", at most 32');
const endpoint = httpUrlSchema();

/** Presets fill in what the operator leaves out; an explicit value always wins. */
export const SOCIAL_PRESETS = {
  google: { kind: 'oidc', issuer: 'https://accounts.google.com', scopes: ['openid', 'email', 'profile'] },
  // Personal Microsoft accounts: the "consumers" tenant, named by its id because discovery must
  // answer the same issuer it was asked for ("common" names each user's tenant instead). Its
  // tokens carry no email_verified: an operator sets verifiedField to an optional claim they trust (xms_edov).
  microsoft: { kind: 'oidc', issuer: 'https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad/v2.0', scopes: ['openid', 'email', 'profile'] },
  github: {
    kind: 'oauth2',
    authorizationEndpoint: 'https://github.com/login/oauth/authorize',
    tokenEndpoint: 'https://github.com/login/oauth/access_token',
    userinfoEndpoint: 'https://api.github.com/user',
    // GitHub's /user shows only a public email and no verification flag: /user/emails has both.
    emailsEndpoint: 'https://api.github.com/user/emails',
    scopes: ['read:user', 'user:email'],
    subjectField: 'id',
  },
  discord: {
    kind: 'oauth2',
    authorizationEndpoint: 'https://discord.com/oauth2/authorize',
    tokenEndpoint: 'https://discord.com/api/oauth2/token',
    userinfoEndpoint: 'https://discord.com/api/users/@me',
    scopes: ['identify', 'email'],
    subjectField: 'id',
    emailField: 'email',
    verifiedField: 'verified',
  },
} as const;

export type SocialPreset = keyof typeof SOCIAL_PRESETS;

const providerSchema = z.strictObject({
  id: providerIdSchema,
  preset: z.enum(Object.keys(SOCIAL_PRESETS) as [SocialPreset, ...SocialPreset[]]).optional(),
  kind: z.enum(['oidc', 'oauth2']).optional(),
  clientId: z.string().min(1).max(512),
  issuer: endpoint.optional(),
  authorizationEndpoint: endpoint.optional(),
  tokenEndpoint: endpoint.optional(),
  userinfoEndpoint: endpoint.optional(),
  emailsEndpoint: endpoint.optional(),
  scopes: z.array(z.string().min(1).max(100)).max(20).optional(),
  subjectField: z.string().min(1).max(64).optional(),
  emailField: z.string().min(1).max(64).optional(),
  verifiedField: z.string().min(1).max(64).optional(),
});

export type SocialProviderConfig = z.infer<typeof providerSchema>;

export const socialSection = z
  .strictObject({
    providers: opt(
      z
        .array(providerSchema)
        .max(20)
        .default([])
        .superRefine((list, ctx) => {
          refineUniqueIds(list, ctx);
          for (const p of list) {
            const kind = p.kind ?? (p.preset ? SOCIAL_PRESETS[p.preset].kind : undefined);
            if (!kind) ctx.addIssue({ code: 'custom', message: `provider "${p.id}": set kind (oidc or oauth2) or a preset` });
          }
        }),
      {
        doc: 'Social sign-in providers, as JSON: `[{"id": "google", "preset": "google", "clientId": "…"}]`. preset is google, microsoft, github or discord and fills in the endpoints; otherwise kind "oidc" needs issuer (discovery), kind "oauth2" needs authorizationEndpoint, tokenEndpoint and userinfoEndpoint, with subjectField, emailField, verifiedField naming the userinfo JSON fields, or emailsEndpoint for a GitHub-style list of addresses. The callback URL to register at the provider is `<server.publicUrl>/v1/auth/social/<id>/callback`.',
      },
    ),
    clientSecrets: opt(z.record(providerIdSchema, z.string().min(1).max(4096)).optional(), {
      doc: 'Client secrets of the social providers, as a JSON object from provider id to secret: `{"google": "…"}`. Never logged, never in a response.',
      secret: true,
    }),
    allowInsecureRequests: opt(z.boolean().default(false), {
      doc: 'Talk to providers over plain HTTP. Only for a local test identity provider on loopback; never in production.',
    }),
    stateTtlSeconds: opt(z.number().int().min(60).max(600).default(600), {
      doc: 'How long a started social sign-in may take at the provider before its browser-bound state expires.',
    }),
  })
  .prefault({});
