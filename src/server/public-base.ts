/**
 * The base URL clients reach this node at: `server.publicUrl` when set (what production must set:
 * then no request can choose it), else the request's own scheme and host (a local node, tests).
 * OAuth metadata, issuers and audiences are built from it, so they name the URL the client used.
 */
import type { FastifyRequest } from 'fastify';

/** @example publicBaseOf(config.server.publicUrl, request) // 'https://gatehouse.example.com' */
export function publicBaseOf(publicUrl: string | undefined, request: Pick<FastifyRequest, 'protocol' | 'host'>): string {
  return (publicUrl ?? `${request.protocol}://${request.host}`).replace(/\/+$/, '');
}
