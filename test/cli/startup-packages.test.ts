/**
 * What a node loads at start. Clients of features a node may never use are imported by their first
 * use (README, "Memory"): a static import of one of them would silently put its modules back into
 * every node's memory, which this test catches.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const CHILD = fileURLToPath(new URL('../support/startup-packages.ts', import.meta.url));

describe('packages loaded when a node starts', () => {
  it('leaves the clients of Redis, PostgreSQL, SMTP, SAML, passkeys, QR codes, X.509 and the reference UI unloaded until they are used', () => {
    const run = spawnSync(process.execPath, [CHILD], { encoding: 'utf8', timeout: 600_000, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' } });
    expect(run.status, run.stderr).toBe(0);
    const { packages, files } = JSON.parse(run.stdout) as { packages: string[]; files: string[] };
    // The hook does see what a node needs (else the refusals below would prove nothing).
    expect(packages).toEqual(expect.arrayContaining(['fastify', '@electric-sql/pglite', 'zod', 'pino', 'undici']));
    for (const lazy of ['ioredis', 'nodemailer', '@node-saml/node-saml', '@simplewebauthn/server', 'qrcode', '@peculiar/x509', '@scalar/fastify-api-reference']) {
      expect(packages, `${lazy} was loaded at start`).not.toContain(lazy);
    }
    // The embedded adapter takes node-postgres's parameter rules from pg/lib/utils.js (see
    // src/store/pg-values.ts); the client itself is loaded only for a PostgreSQL database.
    expect(files.filter((f) => f.startsWith('pg/'))).toEqual(['pg/lib/defaults.js', 'pg/lib/utils.js']);
  });
});
