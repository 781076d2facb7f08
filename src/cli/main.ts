/**
 * The `gatehouse` command. Exit codes: 0 ok, 1 failure, 2 bad configuration or usage,
 * 3 the embedded data directory is held by a running server.
 */
import { Command } from 'commander';
import { ConfigError, loadConfig, type LoadedConfig } from '../config/load.ts';
import { DataDirLockedError } from '../store/data-dir.ts';
import { runDoctor } from './doctor.ts';
import { runMigrate } from './migrate.ts';
import { runStart } from './start.ts';
import { runOutbox } from './outbox.ts';
import { outboxDirOf } from '../identity/index.ts';
import { quietLogger, runKeysStatus, runRotateDek, runRotateKek, runRotateSigning } from './keys.ts';
import { CryptoError } from '../crypto/errors.ts';
import { runAuditVerify, type AuditVerifyOptions } from './audit.ts';
import { runAuditExport, runAuditPrune } from './audit-log.ts';
import { runSetup, SetupError } from './setup.ts';
import { runReload, runTrustReport } from './trust.ts';
import { BackupError } from '../backup/index.ts';
import { runBackupList, runBackupNow, runBackupPrune, runBackupVerify, runDrill, runKeysExport, runRestore } from './backup.ts';
import { runJobsList, runJobsRun } from './jobs.ts';

function load(configFile: string | undefined): LoadedConfig {
  return loadConfig(configFile ? { configFile } : {});
}

/** The full name of a subcommand, e.g. `keys status`. */
function commandName(command: Command | undefined): string {
  const names: string[] = [];
  for (let c = command; c?.parent; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

function fail(err: unknown, command?: Command): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`gatehouse: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof CryptoError) {
    process.stderr.write(`gatehouse: keyring error (${err.code}): ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof BackupError) {
    process.stderr.write(`gatehouse: backup error (${err.code}): ${err.message}\n`);
    process.exit(1);
  }
  if (err instanceof SetupError) {
    process.stderr.write(`gatehouse setup: ${err.message}\n`);
    process.exit(err.exitCode);
  }
  if (err instanceof DataDirLockedError) {
    const name = commandName(command);
    process.stderr.write(
      `gatehouse: ${err.message}.\n` +
        `Embedded PGlite allows one process per data directory, so \`gatehouse ${name || 'this command'}\` cannot open it while the server runs, even to read. ` +
        'Stop the server first ' +
        '(migrations also run at start), or run on PostgreSQL (DATABASE_URL), where every command works beside running nodes. ' +
        'While it runs, `gatehouse doctor` (which checks the server over HTTP), `setup`, `outbox`, `audit verify` and `reload` work; its trust report is at GET /v1/admin/trust-report.\n',
    );
    process.exit(3);
  }
  const e = err as Error;
  process.stderr.write(`gatehouse: ${e.message ?? String(err)}\n`);
  process.exit(1);
}

/** Runs a command's action with the one error exit (commander passes the command object last). */
function guarded<A extends unknown[]>(run: (...args: A) => Promise<void>): (...args: A) => Promise<void> {
  return async (...args) => {
    try {
      await run(...args);
    } catch (err) {
      const last = args[args.length - 1];
      fail(err, last instanceof Command ? last : undefined);
    }
  };
}

const program = new Command();
const configOf = (): LoadedConfig => load(program.opts<{ config?: string }>().config);
const out = (line: string): void => {
  process.stdout.write(line + '\n');
};
program.name('gatehouse').description('Self-hosted security core for multi-tenant AI applications').option('-c, --config <file>', 'JSON config file');

program
  .command('start')
  .description('start a node (embedded PGlite unless DATABASE_URL is set)')
  .action(
    guarded(async () => {
      await runStart(configOf(), program.opts<{ config?: string }>().config);
    }),
  );

program
  .command('setup')
  .description('create the operator account on the running server with the one-time code `start` printed (reads the code and password without echo, or from stdin)')
  .option('--email <address>', 'the operator\'s email (asked for when missing)')
  .option('--url <url>', 'where the server listens (default: the running embedded server, else server.publicUrl or host:port)')
  .action(
    guarded(async (opts: { email?: string; url?: string }) => {
      await runSetup(configOf(), { ...(opts.email ? { email: opts.email } : {}), ...(opts.url ? { url: opts.url } : {}) }, out);
    }),
  );

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(
    guarded(async () => {
      await runMigrate(configOf(), out);
    }),
  );

program
  .command('doctor')
  .description('show the effective configuration (secrets masked) and check connectivity')
  .action(
    guarded(async () => {
      const report = await runDoctor(configOf());
      process.stdout.write(report.lines.join('\n') + '\n');
      process.exit(report.ok ? 0 : 1);
    }),
  );

program
  .command('reload')
  .description('reload the running node\'s configuration without a restart (vendor keys, SMTP, metrics token, cron secret, CORS origins, rate limits, log level); a bad configuration is refused whole')
  .option('--pid <pid>', 'the node\'s process id (default: the server holding the embedded data directory)')
  .action(
    guarded(async (opts: { pid?: string }) => {
      const pid = opts.pid === undefined ? undefined : Number(opts.pid);
      if (pid !== undefined && !(Number.isInteger(pid) && pid > 0)) throw new ConfigError('--pid: expected a process id');
      // A configuration that does not load is what the node will refuse: still ask it, so the refusal
      // is recorded where it runs; the data directory then comes from the environment or the default.
      let dataDir: string;
      try {
        dataDir = configOf().config.storage.dataDir;
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
        process.stderr.write(`gatehouse reload: the configuration does not load here (${err.message}); asking the node anyway\n`);
        dataDir = process.env.GATEHOUSE_STORAGE_DATA_DIR ?? './.gatehouse';
      }
      process.exitCode = await runReload(dataDir, pid === undefined ? {} : { pid }, out);
    }),
  );

program
  .command('trust-report')
  .description('generate the signed trust report from live checks (exit 1 when a control failed); refused while a server holds the embedded data directory: ask it at GET /v1/admin/trust-report')
  .option('--format <format>', 'json or html', 'json')
  .option('--out <file>', 'write to a file instead of stdout')
  .action(
    guarded(async (opts: { format: string; out?: string }) => {
      if (opts.format !== 'json' && opts.format !== 'html') throw new ConfigError('--format: expected json or html');
      process.exitCode = await runTrustReport(configOf(), { format: opts.format, ...(opts.out ? { out: opts.out } : {}) }, out);
    }),
  );

const keys = program.command('keys').description('key-encryption keys, data keys and signing keys');
keys
  .command('status')
  .description('versions, primaries and what each protects (counts, no secrets)')
  .action(
    guarded(async () => {
      await runKeysStatus(configOf(), out);
    }),
  );
const rotate = keys.command('rotate').description('rotate keys without downtime');
rotate
  .command('kek')
  .description('new primary key-encryption key; every data key rewrapped')
  .option('--dry-run', 'show what would change')
  .action(
    guarded(async (opts: { dryRun?: boolean }) => {
      await runRotateKek(configOf(), { dryRun: opts.dryRun === true }, out);
    }),
  );
rotate
  .command('dek')
  .description('new data keys; sealed values re-encrypted as a resumable job')
  .option('--tenant <id>', 'only this tenant')
  .option('--dry-run', 'count what would be re-encrypted')
  .action(
    guarded(async (opts: { dryRun?: boolean; tenant?: string }) => {
      await runRotateDek(configOf(), { dryRun: opts.dryRun === true, ...(opts.tenant ? { tenant: opts.tenant } : {}) }, out);
    }),
  );
rotate
  .command('signing')
  .description('promote the published next signing key; publish a new next')
  .option('--purpose <purpose>', 'access-token or audit-checkpoint (default: both)')
  .option('--dry-run', 'show what would change')
  .action(
    guarded(async (opts: { dryRun?: boolean; purpose?: string }) => {
      await runRotateSigning(configOf(), { dryRun: opts.dryRun === true, ...(opts.purpose ? { purpose: opts.purpose } : {}) }, out);
    }),
  );

keys
  .command('export')
  .description('write every key-encryption key to a file encrypted to age recipients (backup.recipients by default); keep it apart from the data backups')
  .requiredOption('--out <file>', 'the file to create (never overwritten)')
  .option('--recipient <age1...>', 'an age recipient (repeatable)', (v: string, prev: string[] = []) => [...prev, v])
  .action(
    guarded(async (opts: { out: string; recipient?: string[] }) => {
      await runKeysExport(configOf(), opts, out);
    }),
  );

const backup = program
  .command('backup')
  .description('take an encrypted backup now (backup.dir or backup.s3, to backup.recipients)')
  .action(
    guarded(async () => {
      await runBackupNow(configOf(), out);
    }),
  );
backup.command('list').description('backups at the destination; INCOMPLETE ones were cut off while written').action(
  guarded(async () => {
    await runBackupList(configOf(), out);
  }),
);
backup
  .command('verify')
  .description('decrypt and authenticate a whole backup, check the manifest signature (with the configured keys or --keys) and every file against the manifest, without restoring it')
  .argument('<id>', 'backup id')
  .option('--keys <file>', 'the key export (`gatehouse keys export`) to check the manifest signature with, where the keys are not configured')
  .action(
    guarded(async (id: string, opts: { keys?: string }) => {
      await runBackupVerify(configOf(), id, out, opts.keys);
    }),
  );
backup.command('prune').description('remove backups older than backup.retentionDays (the newest complete one is kept)').action(
  guarded(async () => {
    await runBackupPrune(configOf(), out);
  }),
);
backup
  .command('drill')
  .description('back up a node under write load, restore into scratch, verify, start a node on it, print RPO and RTO')
  .option('--keys <file>', 'the file of `gatehouse keys export` (needed when keys come from a key file)')
  .option('--scratch-url <url>', 'PostgreSQL: an empty scratch database to restore into')
  .action(
    guarded(async (opts: { keys?: string; scratchUrl?: string }) => {
      await runDrill(configOf(), opts, out);
    }),
  );

program
  .command('restore')
  .description('restore a backup into an empty data directory or database, verify it (row counts, audit logs, migrations, RLS)')
  .argument('<id>', 'backup id')
  .option('--keys <file>', 'the file of `gatehouse keys export`, installed as the key file of the target')
  .option('--target-dir <dir>', 'embedded: the empty data directory (default storage.dataDir)')
  .option('--target-url <url>', 'PostgreSQL: the empty database (default DATABASE_URL)')
  .action(
    guarded(async (id: string, opts: { keys?: string; targetDir?: string; targetUrl?: string }) => {
      await runRestore(configOf(), id, opts, out);
    }),
  );

program
  .command('outbox')
  .description('mail written to the local outbox when no SMTP server is configured')
  .argument('[id]', 'show one message')
  .action(
    guarded(async (id: string | undefined) => {
      const loaded = configOf();
      await runOutbox(outboxDirOf(loaded.config), id ? { id } : {}, out);
    }),
  );

const jobs = program.command('jobs').description('scheduled jobs: what runs when, and running one now');
jobs
  .command('list')
  .description('every job with its schedule (UTC), next run and last recorded run')
  .action(
    guarded(async () => {
      await runJobsList(configOf(), quietLogger(), out);
    }),
  );
jobs
  .command('run')
  .description('run one job now, under the same cluster-wide lock as its scheduled runs (exit 1 when it fails or is already running)')
  .argument('<job>', 'job name, e.g. audit.prune')
  .action(
    guarded(async (name: string) => {
      process.exitCode = await runJobsRun(configOf(), quietLogger(), name, out);
    }),
  );

const audit = program.command('audit').description('the tamper-evident audit log');
audit
  .command('export')
  .description('write one log as JSON Lines (events, checkpoints, public keys) to stdout, for `audit verify`')
  .requiredOption('--org <id>', 'org id, or "platform" for the platform log')
  .action(
    guarded(async (opts: { org: string }) => {
      await runAuditExport(configOf(), quietLogger(), opts.org, (chunk) =>
        new Promise<void>((resolve, reject) => {
          // Honour backpressure: a large log never piles up in memory.
          if (process.stdout.write(chunk)) resolve();
          else process.stdout.once('drain', resolve).once('error', reject);
        }),
      );
    }),
  );
audit
  .command('prune')
  .description('remove events older than audit.retentionDays from every log, keeping what the rest needs to verify')
  .action(
    guarded(async () => {
      await runAuditPrune(configOf(), quietLogger(), out);
    }),
  );
audit
  .command('verify')
  .description(
    'verify an audit export offline. Exit 0 VERIFIED (signatures checked against the pinned --keys, every pin met), ' +
      '3 CONSISTENT-BUT-UNPINNED (nothing failed, but no --keys: a rewrite re-signed with a new key cannot be excluded), ' +
      '1 FAILED, 2 unreadable file, keys or pin. Without --min-size, --size/--root or --checkpoint, a cut after the last ' +
      'checkpoint (end line rewritten) cannot be excluded, and the report says so',
  )
  .argument('<file>', 'export file (JSON Lines)')
  .option('--keys <jwks.json>', 'trust only these public keys (the server\'s /.well-known/jwks.json)')
  .option('--min-size <n>', 'the log had at least n events: the export\'s checkpoints must sign at least n')
  .option('--size <n>', 'with --root: the size of a tree head seen before')
  .option('--root <hex|base64>', 'with --size: the root seen at that size; the export\'s first n events must hash to it')
  .option('--checkpoint <file>', 'a signed checkpoint saved before ({"checkpoint":...,"signature":...}): the export must extend it')
  // Usage errors exit 2 here: 1 must mean that the file failed verification.
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .action(
    guarded(async (file: string, opts: { keys?: string; minSize?: string; size?: string; root?: string; checkpoint?: string }) => {
      const options: AuditVerifyOptions = {};
      if (opts.keys !== undefined) options.trustedKeysFile = opts.keys;
      if (opts.minSize !== undefined) options.minSize = opts.minSize;
      if (opts.size !== undefined) options.size = opts.size;
      if (opts.root !== undefined) options.root = opts.root;
      if (opts.checkpoint !== undefined) options.checkpointFile = opts.checkpoint;
      const code = await runAuditVerify(file, options, out, (line) => {
        process.stderr.write(line + '\n');
      });
      process.exitCode = code;
    }),
  );

await program.parseAsync(process.argv);
