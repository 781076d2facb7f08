/**
 * Trust report routes (OPS-4): operators get a fresh report (JSON or HTML) at
 * /v1/admin/trust-report; the public, redacted copy at /.well-known/trust-report is served only
 * when `trust.publicReport` is on (404 otherwise) and is regenerated at most every
 * `trust.publicCacheSeconds`.
 */
import type { FastifyReply } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type Feature } from '../server/route.ts';
import { renderTrustHtml, TRUST_HTML_CSP } from './html.ts';
import type { SignedTrustReport } from './types.ts';

const signedReportSchema = z.looseObject({
  report: z.looseObject({ format: z.literal('gatehouse-trust-report/1'), generatedAt: z.string(), controls: z.array(z.looseObject({ control: z.string(), state: z.string() })) }),
  signature: z.object({ alg: z.literal('EdDSA'), kid: z.string(), value: z.string() }),
});

/** The page under its own CSP; only a generated report gets it (an error keeps the API's headers). */
function sendHtml(reply: FastifyReply, signed: SignedTrustReport): FastifyReply {
  return reply.type('text/html; charset=utf-8').header('content-security-policy', TRUST_HTML_CSP).send(renderTrustHtml(signed));
}

export function createTrustFeature(deps: { generate: () => Promise<SignedTrustReport>; publicReport: () => Promise<SignedTrustReport>; publicEnabled: () => boolean }): Feature {
  const publicOrNotFound = async (): Promise<SignedTrustReport> => {
    if (!deps.publicEnabled()) throw new AppError('NOT_FOUND');
    return deps.publicReport();
  };
  return {
    id: 'trust',
    routes: [
      defineRoute({
        method: 'GET',
        url: '/v1/admin/trust-report',
        summary: 'Operators: the trust report, generated now from live checks, signed with the audit checkpoint key (verify with /.well-known/jwks.json). Each generation is an audit event.',
        guard: { kind: 'session' },
        permission: 'platform.trust.read',
        rateCategory: 'read',
        schema: { response: { 200: signedReportSchema } },
        handler: async () => deps.generate(),
      }),
      defineRoute({
        method: 'GET',
        url: '/v1/admin/trust-report.html',
        summary: 'Operators: the trust report as one self-contained HTML page (no script, no external asset, strict CSP), generated now.',
        guard: { kind: 'session' },
        permission: 'platform.trust.read',
        rateCategory: 'read',
        schema: { response: { 200: z.string() } },
        handler: async ({ reply }) => sendHtml(reply, await deps.generate()),
      }),
      defineRoute({
        method: 'GET',
        url: '/.well-known/trust-report',
        summary: 'The public trust report (each control\'s state, no evidence), signed; only when trust.publicReport is on, else 404.',
        guard: { kind: 'public' },
        permission: null,
        rateCategory: 'read',
        schema: { response: { 200: signedReportSchema } },
        handler: async () => publicOrNotFound(),
      }),
      defineRoute({
        method: 'GET',
        url: '/.well-known/trust-report.html',
        summary: 'The public trust report as a self-contained HTML page; only when trust.publicReport is on, else 404.',
        guard: { kind: 'public' },
        permission: null,
        rateCategory: 'read',
        schema: { response: { 200: z.string() } },
        handler: async ({ reply }) => sendHtml(reply, await publicOrNotFound()),
      }),
    ],
  };
}
