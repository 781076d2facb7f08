/**
 * The console's routes (UI-1): `/` and `/console` redirect to `/console/`; `/console/*` serves the
 * built files, and any other path under it gets the page (index.html), where the console's router
 * takes over (a deep link or a reload of a client route works). Every response carries the
 * console's strict CSP (csp.ts). A missing file under assets/ is a 404, never the page.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { AppError } from '../server/errors.ts';
import { defineRoute, type RouteDef } from '../server/route.ts';
import type { Asset } from './assets.ts';
import { CONSOLE_CSP } from './csp.ts';

export const CONSOLE_ERROR_CODES = {
  CONSOLE_NOT_BUILT: {
    status: 503,
    message: 'The console is not built on this node.',
    doc: 'console/dist is missing: `npm ci` builds it (the prepare script), or run `npm run build:console`.',
  },
} as const;

function send(request: FastifyRequest, reply: FastifyReply, asset: Asset): FastifyReply {
  const gzip = /\bgzip\b/.test(String(request.headers['accept-encoding'] ?? '')) ? asset.gzip() : undefined;
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('vary', 'accept-encoding')
    .header('cache-control', asset.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
    .type(asset.type);
  if (gzip) return reply.header('content-encoding', 'gzip').send(gzip);
  return reply.send(asset.body);
}

/** The console's routes over the loaded build (undefined when it is not built). */
export function consoleRoutes(assets: ReadonlyMap<string, Asset> | undefined): RouteDef[] {
  const serve = (path: string, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    if (!assets) throw new AppError('CONSOLE_NOT_BUILT');
    const file = assets.get(path);
    if (file) return send(request, reply, file);
    if (path.startsWith('assets/')) throw new AppError('NOT_FOUND');
    const page = assets.get('index.html');
    if (!page) throw new AppError('CONSOLE_NOT_BUILT');
    return send(request, reply, page);
  };
  const page = { 200: z.string() };
  const redirect = (url: string, summary: string) =>
    defineRoute({
      method: 'GET',
      url,
      summary,
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      hidden: true,
      schema: { response: { 302: z.string() } },
      handler: async ({ reply }) => reply.redirect('/console/', 302),
    });
  const routes = [
    redirect('/', 'Redirects to the web console.'),
    redirect('/console', 'Redirects to the web console.'),
    defineRoute({
      method: 'GET',
      url: '/console/',
      summary: 'The web console (a single-page app; the API it calls is the public API).',
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      hidden: true,
      schema: { response: page },
      handler: async ({ request, reply }) => serve('index.html', request, reply),
    }),
    defineRoute({
      method: 'GET',
      url: '/console/*',
      summary: "The web console's files, and its page for any client route under /console/.",
      guard: { kind: 'public' },
      permission: null,
      rateCategory: 'read',
      hidden: true,
      schema: { params: z.object({ '*': z.string().max(500) }), response: page },
      handler: async ({ params, request, reply }) => serve(params['*'], request, reply),
    }),
  ];
  return routes as unknown as RouteDef[];
}
