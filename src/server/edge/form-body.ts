/**
 * `application/x-www-form-urlencoded` bodies, only for routes that declare `formBody: true` (the
 * SAML ACS's HTTP-POST binding, OAuth token and revocation endpoints, whose standards require the
 * form encoding). Every other route keeps refusing a form with 415, so no JSON route becomes
 * reachable by a cross-site HTML form. A field given twice is ambiguous and refused.
 */
import type { FastifyInstance } from 'fastify';
import { AppError } from '../errors.ts';

export function registerFormBodyParser(app: FastifyInstance): void {
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (request, body, done) => {
    if (request.routeOptions.config.gatehouse?.formBody !== true) {
      done(new AppError('UNSUPPORTED_MEDIA_TYPE'), undefined);
      return;
    }
    const out: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const [k, v] of new URLSearchParams(body as string)) {
      if (k in out) {
        done(new AppError('VALIDATION_FAILED', `body.${k.slice(0, 40)}: given twice`), undefined);
        return;
      }
      out[k] = v;
    }
    done(null, out);
  });
}
