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

function load(configFile: string | undefined): LoadedConfig {
  return loadConfig(configFile ? { configFile } : {});
}

function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`gatehouse: configuration error: ${err.message}\n`);
    process.exit(2);
  }
  if (err instanceof DataDirLockedError) {
    process.stderr.write(
      `gatehouse: ${err.message}.\n` +
        'PGlite allows one process per data directory. Stop the server first (migrations also run at start), ' +
        'or use `gatehouse doctor`, which checks a running server over HTTP.\n',
    );
    process.exit(3);
  }
  const e = err as Error;
  process.stderr.write(`gatehouse: ${e.message ?? String(err)}\n`);
  process.exit(1);
}

const program = new Command();
program.name('gatehouse').description('Self-hosted security core for multi-tenant AI applications').option('-c, --config <file>', 'JSON config file');

program
  .command('start')
  .description('start a node (embedded PGlite unless DATABASE_URL is set)')
  .action(async () => {
    try {
      await runStart(load(program.opts<{ config?: string }>().config));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('migrate')
  .description('apply pending database migrations')
  .action(async () => {
    try {
      await runMigrate(load(program.opts<{ config?: string }>().config), (line) => process.stdout.write(line + '\n'));
    } catch (err) {
      fail(err);
    }
  });

program
  .command('doctor')
  .description('show the effective configuration (secrets masked) and check connectivity')
  .action(async () => {
    try {
      const report = await runDoctor(load(program.opts<{ config?: string }>().config));
      process.stdout.write(report.lines.join('\n') + '\n');
      process.exit(report.ok ? 0 : 1);
    } catch (err) {
      fail(err);
    }
  });

await program.parseAsync(process.argv);
