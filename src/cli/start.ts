/** `gatehouse start`: one node, serving until SIGINT/SIGTERM, then a clean shutdown. */
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { configSourceOf, type LoadedConfig } from '../config/load.ts';
import { TRUST } from '../trust/index.ts';
import { createRedirectServer } from '../server/edge/tls.ts';
import { startNode } from './runtime.ts';

export async function runStart(loaded: LoadedConfig, configFile?: string): Promise<void> {
  const { config } = loaded;
  // A reload reads the same config file and environment again (`<VAR>_FILE` files included).
  const node = await startNode({ config, defaultMetrics: true, reloadFrom: configSourceOf(configFile ? { configFile } : {}) });
  const { app, logger } = node;
  const address = await app.listen({ host: config.server.host, port: config.server.port });
  node.announce(address);
  let redirect: Server | undefined;
  if (config.tls.certFile && config.tls.redirectHttpPort !== undefined) {
    const httpsPort = Number(new URL(address).port) || 443;
    const publicHost = config.server.publicUrl ? new URL(config.server.publicUrl).hostname : undefined;
    redirect = createRedirectServer(httpsPort, publicHost);
    await new Promise<void>((ok, fail) => {
      redirect?.once('error', fail);
      redirect?.listen(config.tls.redirectHttpPort, config.server.host, ok);
    });
  }
  const data = config.storage.databaseUrl ? `PostgreSQL ${node.db.location}` : `PGlite in ${resolve(config.storage.dataDir)}`;
  logger.info({ url: address, storage: node.db.kind, kv: node.kv.kind }, `Gatehouse listening on ${address}; data: ${data}`);
  const setup = await node.identity.accounts.ensureSetupToken();
  if (setup) {
    // Printed once, outside the logs: it creates the operator account and works a single time.
    const origin = config.server.publicUrl ? new URL(config.server.publicUrl).origin : address;
    process.stdout.write(
      `\nFirst run: no operator account yet. Create it within ${Math.round(config.auth.emailTokenTtlSeconds / 60)} minutes with this one-time code:\n` +
        `  ${setup}\n` +
        'In another terminal, `npx gatehouse setup --email you@example.com` asks for the code and a password without echoing them.\n' +
        'Or over HTTP, with your own password in place of the placeholder (the placeholder itself is refused):\n' +
        `  curl -X POST ${origin}/v1/setup -H 'content-type: application/json' \\\n` +
        `    -d '{"token":"${setup}","email":"you@example.com","password":"<a long passphrase>"}'\n` +
        'A new code is printed at every start until the operator exists.\n\n',
    );
  }
  if (node.identity.mailer.transport === 'outbox') {
    logger.warn('no SMTP configured (GATEHOUSE_MAIL_SMTP_URL): mail goes to the outbox; read it with `gatehouse outbox`');
  }

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    redirect?.close();
    node
      .close()
      .then(() => {
        logger.info('stopped cleanly');
        process.exit(0);
      })
      .catch((err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  // SIGHUP (and `gatehouse reload`, which sends it) reloads the configuration; a bad one is refused whole.
  process.on('SIGHUP', () => {
    if (!stopping) void node.use(TRUST).reload('signal');
  });
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}
