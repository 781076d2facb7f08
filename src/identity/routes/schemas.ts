/** Request and response schemas the identity routes share (their OpenAPI shapes). */
import { z } from 'zod';
import type { SecondFactorProof } from '../mfa.ts';
import { authenticationResponseSchema, type AuthenticationResponse } from '../passkeys.ts';

export const email = z.string().min(3).max(320);
export const password = z.string().min(1).max(8192);
export const token = z.string().min(10).max(200);
export const userSchema = z.object({ id: z.string(), email: z.string(), emailVerified: z.boolean(), isOperator: z.boolean(), createdAt: z.string() });
export const mfaStatusSchema = z.object({ totp: z.boolean(), totpFactorId: z.string().nullable(), passkeys: z.number(), recoveryCodesLeft: z.number() });
export const mfaChallengeResponse = z.object({
  mfaRequired: z.literal(true),
  mfaToken: z.string(),
  methods: z.array(z.enum(['totp', 'recovery', 'webauthn'])),
  expiresIn: z.number(),
});
export const totpCode = z.string().regex(/^[0-9]{6}$/, 'six digits');
export const recoveryCode = z.string().min(1).max(64);
// A second factor is a TOTP code, a recovery code or a passkey assertion: exactly one of them (oneProof).
export const proofFields = { code: totpCode.optional(), recoveryCode: recoveryCode.optional(), webauthn: authenticationResponseSchema.optional() };
export type ProofBody = { code?: string | undefined; recoveryCode?: string | undefined; webauthn?: AuthenticationResponse | undefined };
export const oneProof = (b: ProofBody): boolean => [b.code, b.recoveryCode, b.webauthn].filter((p) => p !== undefined).length === 1;
export const ONE_PROOF = { message: 'give exactly one of code, recoveryCode and webauthn' };
export const accepted = z.object({ status: z.literal('accepted') });
export const ok = z.object({ ok: z.literal(true) });
export const sessionSchema = z.object({ id: z.string(), mode: z.enum(['bearer', 'cookie']), ip: z.string().nullable(), userAgent: z.string().nullable(), createdAt: z.string(), lastUsedAt: z.string(), current: z.boolean() });
export const deviceSchema = z.object({ id: z.string(), userAgent: z.string().nullable(), networks: z.array(z.string()), firstSeenAt: z.string(), lastSeenAt: z.string() });

/** The second factor a body carries (exactly one, checked by oneProof). */
export function proofOf(body: ProofBody): SecondFactorProof {
  if (body.webauthn !== undefined) return { webauthn: body.webauthn };
  return body.code !== undefined ? { code: body.code } : { recoveryCode: body.recoveryCode ?? '' };
}
