/** OPS-3: one schema, file + environment + *_FILE, secrets only from the environment, clear refusals. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, maskedConfig, secretValues } from '../../src/config/load.ts';

function dir(): string {
  return mkdtempSync(join(tmpdir(), 'gh-config-'));
}

describe('loading', () => {
  it('defaults: loopback, port 8700, ./.gatehouse, limits closed on store failure', () => {
    const { config } = loadConfig({ env: {}, cwd: dir() });
    expect(config.server.host).toBe('127.0.0.1');
    expect(config.server.port).toBe(8700);
    expect(config.storage.dataDir).toBe('./.gatehouse');
    expect(config.server.bodyLimitBytes).toBe(1024 * 1024);
    expect(config.rateLimit.onStoreError).toBe('closed');
    expect(config.tls.minVersion).toBe('TLSv1.3');
  });

  it('precedence: default < config file < environment', () => {
    const d = dir();
    writeFileSync(join(d, 'gatehouse.config.json'), JSON.stringify({ server: { port: 9001, host: '0.0.0.0' } }));
    const { config, sources } = loadConfig({ env: { GATEHOUSE_SERVER_PORT: '9002' }, cwd: d });
    expect(config.server.port).toBe(9002);
    expect(config.server.host).toBe('0.0.0.0');
    expect(sources['server.port']).toBe('env GATEHOUSE_SERVER_PORT');
    expect(sources['server.host']).toContain('file');
  });

  it('the result is frozen', () => {
    const { config } = loadConfig({ env: {}, cwd: dir() });
    expect(() => {
      (config.server as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('reads a secret from a *_FILE path, and accepts the DATABASE_URL / REDIS_URL aliases', () => {
    const d = dir();
    writeFileSync(join(d, 'token'), 'file-token-0123456789abcdef\n');
    const { config } = loadConfig({
      env: { GATEHOUSE_METRICS_TOKEN_FILE: join(d, 'token'), DATABASE_URL: 'postgres://u@h/db', REDIS_URL: 'redis://127.0.0.1:6379' },
      cwd: d,
    });
    expect(config.metrics.token).toBe('file-token-0123456789abcdef');
    expect(config.storage.databaseUrl).toBe('postgres://u@h/db');
    expect(config.kv.redisUrl).toBe('redis://127.0.0.1:6379');
  });

  it('lists as JSON or comma-separated', () => {
    const a = loadConfig({ env: { GATEHOUSE_CORS_ORIGINS: 'https://a.test,https://b.test' }, cwd: dir() }).config;
    const b = loadConfig({ env: { GATEHOUSE_CORS_ORIGINS: '["https://a.test","https://b.test"]' }, cwd: dir() }).config;
    expect(a.cors.origins).toEqual(['https://a.test', 'https://b.test']);
    expect(b.cors.origins).toEqual(a.cors.origins);
  });
});

describe('refusals name the option and the reason', () => {
  const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
    ['a non-number port', { GATEHOUSE_SERVER_PORT: 'eighty' }, /^server\.port \(GATEHOUSE_SERVER_PORT\): expected a number/],
    ['a port out of range', { GATEHOUSE_SERVER_PORT: '70000' }, /^server\.port: .*65535/],
    ['a bad enum', { GATEHOUSE_TLS_MIN_VERSION: 'TLSv1.0' }, /^tls\.minVersion: /],
    ['a bad boolean', { GATEHOUSE_METRICS_OPEN: 'maybe' }, /^metrics\.open \(GATEHOUSE_METRICS_OPEN\): expected true or false/],
    ['a misspelt variable', { GATEHOUSE_SERVR_PORT: '1' }, /^GATEHOUSE_SERVR_PORT: unknown option/],
    ['a non-postgres database URL', { DATABASE_URL: 'mysql://x' }, /^storage\.databaseUrl: must be a postgres:\/\/ URL/],
    ['a short metrics token', { GATEHOUSE_METRICS_TOKEN: 'short' }, /^metrics\.token: must be at least 16 characters/],
    ['a cert without a key', { GATEHOUSE_TLS_CERT_FILE: '/x.pem' }, /^tls\.certFile: certFile and keyFile must be set together/],
    ['both a value and a _FILE', { GATEHOUSE_CRON_SECRET: 'a'.repeat(20), GATEHOUSE_CRON_SECRET_FILE: '/x' }, /^cron\.secret: both GATEHOUSE_CRON_SECRET and GATEHOUSE_CRON_SECRET_FILE/],
    ['an unreadable _FILE', { GATEHOUSE_CRON_SECRET_FILE: '/nonexistent/secret' }, /^cron\.secret: GATEHOUSE_CRON_SECRET_FILE cannot be read \(ENOENT\)/],
    ['a bad CORS origin', { GATEHOUSE_CORS_ORIGINS: 'javascript:alert(1)' }, /^cors\.origins\.0: /],
  ];
  for (const [name, env, message] of cases) {
    it(name, () => {
      expect(() => loadConfig({ env, cwd: dir() })).toThrow(ConfigError);
      expect(() => loadConfig({ env, cwd: dir() })).toThrow(message);
    });
  }

  it('a secret in the config file is refused (secrets come only from the environment)', () => {
    const d = dir();
    writeFileSync(join(d, 'gatehouse.config.json'), JSON.stringify({ metrics: { token: 'in-the-file-0123456789' } }));
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(/^metrics\.token: is a secret and may not be set in the config file; use GATEHOUSE_METRICS_TOKEN or GATEHOUSE_METRICS_TOKEN_FILE/);
  });

  it('an unknown key in the config file is refused', () => {
    const d = dir();
    writeFileSync(join(d, 'gatehouse.config.json'), JSON.stringify({ server: { prot: 1 } }));
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(/^server\.prot: unknown option/);
  });

  it('invalid JSON in the config file is refused', () => {
    const d = dir();
    writeFileSync(join(d, 'gatehouse.config.json'), '{ server: ');
    expect(() => loadConfig({ env: {}, cwd: d })).toThrow(/config file .*: invalid JSON/);
  });

  it('the rejected value of a secret never appears in the error', () => {
    try {
      loadConfig({ env: { DATABASE_URL: 'mysql://admin:Sup3rS3cretPw@db' }, cwd: dir() }); // secret-scan: fake
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).not.toContain('Sup3rS3cretPw');
    }
  });
});

describe('masking', () => {
  it('doctor output masks every secret and secretValues lists them (with URL passwords) for log scrubbing', () => {
    const { config } = loadConfig({
      env: { DATABASE_URL: 'postgres://owner:pw-in-url-123@db/x', GATEHOUSE_METRICS_TOKEN: 'metrics-token-0123456789abcdef' }, // secret-scan: fake
      cwd: dir(),
    });
    const masked = JSON.stringify(maskedConfig(config));
    expect(masked).not.toContain('pw-in-url-123');
    expect(masked).not.toContain('metrics-token-0123456789abcdef');
    expect(secretValues(config)).toEqual(expect.arrayContaining(['pw-in-url-123', 'metrics-token-0123456789abcdef']));
  });
});
