/**
 * Backup test fixtures: an age identity on disk, a node on real storage with two orgs of data,
 * and the configuration that points backups at a directory of the test's own.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { generateX25519Identity, identityToRecipient } from 'age-encryption';
import { loadConfig } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { startNode, type Node } from '../../src/cli/runtime.ts';
import type { MailMessage } from '../../src/identity/mailer.ts';
import { signUpUser } from '../support/users.ts';
import { deliverMailAfterInject } from '../support/app.ts';

export interface AgeKey {
  identity: string;
  recipient: string;
  file: string;
}

export async function ageKey(dir: string, name = 'identity.txt'): Promise<AgeKey> {
  const identity = await generateX25519Identity();
  const recipient = await identityToRecipient(identity);
  const file = join(dir, name);
  writeFileSync(file, `# created by a test\n${identity}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
  return { identity, recipient, file };
}

export function tempDir(label: string): string {
  return mkdtempSync(join(tmpdir(), `gh-backup-${label}-`));
}

export function backupConfig(options: { dataDir: string; backupDir?: string; key: AgeKey; env?: Record<string, string>; overrides?: Record<string, unknown> }): Config {
  return loadConfig({
    env: options.env ?? {},
    cwd: '/nonexistent-gatehouse-test-dir',
    overrides: {
      'log.level': 'warn',
      'storage.dataDir': options.dataDir,
      ...(options.backupDir ? { 'backup.dir': options.backupDir } : {}),
      'backup.recipients': [options.key.recipient],
      'backup.identityFile': options.key.file,
      ...options.overrides,
    },
  }).config;
}

export interface SeededNode {
  node: Node;
  orgs: string[];
  users: string[];
}

/** Starts a node on the configured storage and gives it two users, each owning an org. */
export async function seededNode(config: Config): Promise<SeededNode> {
  const mail: MailMessage[] = [];
  const node = await startNode({
    config,
    logger: pino({ level: 'silent' }),
    mailer: { transport: 'outbox', send: async (m) => void mail.push(m), close: async () => undefined },
  });
  deliverMailAfterInject(node.app, [node]);
  const users: string[] = [];
  const orgs: string[] = [];
  for (const name of ['ada', 'bob']) {
    const u = await signUpUser(node.app, mail, `${name}-${Date.now()}@example.com`);
    users.push(u.userId);
    const created = await node.app.inject({ method: 'POST', url: '/v1/orgs', headers: u.auth, payload: { name: `org of ${name}` } });
    if (created.statusCode !== 201) throw new Error(`org creation answered ${created.statusCode}: ${created.body}`);
    orgs.push(created.json<{ id: string }>().id);
  }
  return { node, orgs, users };
}
