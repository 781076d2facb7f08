/** Shared setup of the webhook suites: an org admin, endpoints through the API, a destination server. */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

/** Relay settings that let the relay reach a destination on loopback, with short backoff. */
export const LOOPBACK_RELAY = {
  'webhooks.relay.allowedHosts': ['127.0.0.1:*'],
  'webhooks.relay.allowedCidrs': ['127.0.0.1/32'],
  'webhooks.relay.allowInsecureHttp': true,
  'webhooks.relay.retryBaseMs': 1000,
  'webhooks.relay.retryMaxMs': 4000,
  'webhooks.relay.maxAttempts': 4,
};

export async function orgAdmin(app: FastifyInstance, mail: readonly MailMessage[], email: string): Promise<{ user: SignedInUser; org: string }> {
  const user = await signUpUser(app, mail, email);
  const res = await app.inject({ method: 'POST', url: '/v1/orgs', headers: user.auth, payload: { name: 'Hooks Inc' } });
  if (res.statusCode !== 201) throw new Error(`org creation answered ${res.statusCode}: ${res.body}`);
  return { user, org: res.json<{ id: string }>().id };
}

export async function makeEndpoint(
  app: FastifyInstance,
  user: SignedInUser,
  org: string,
  input: { name: string; provider: string; destinationUrl?: string | null; verifyToken?: string; secrets: string[] },
): Promise<{ destinationSecret: string }> {
  const res = await app.inject({ method: 'POST', url: `/v1/orgs/${org}/webhooks/endpoints`, headers: user.auth, payload: { name: input.name, provider: input.provider, destinationUrl: input.destinationUrl ?? null, ...(input.verifyToken ? { verifyToken: input.verifyToken } : {}) } });
  if (res.statusCode !== 201) throw new Error(`endpoint creation answered ${res.statusCode}: ${res.body}`);
  for (const secret of input.secrets) {
    const s = await app.inject({ method: 'POST', url: `/v1/orgs/${org}/webhooks/endpoints/${input.name}/secrets`, headers: user.auth, payload: { secret } });
    if (s.statusCode !== 201) throw new Error(`secret answered ${s.statusCode}: ${s.body}`);
  }
  return { destinationSecret: res.json<{ destinationSecret: string }>().destinationSecret };
}

export interface Destination {
  url: string;
  /** Requests received while up, in arrival order. */
  received: { headers: Record<string, string>; body: string }[];
  /** Requests refused while down. */
  refusedCount: () => number;
  setUp: (up: boolean) => void;
  close: () => Promise<void>;
}

/** A destination that answers 503 while down and 204 while up. */
export async function startDestination(): Promise<Destination> {
  const received: Destination['received'] = [];
  let up = true;
  let refused = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (!up) {
        refused += 1;
        res.writeHead(503).end();
        return;
      }
      received.push({ headers: req.headers as Record<string, string>, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/hooks`,
    received,
    refusedCount: () => refused,
    setUp: (value) => {
      up = value;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
