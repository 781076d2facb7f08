/**
 * Canary tests for log hygiene (DATA-4): distinctive random values are logged through every path
 * a secret or personal datum could take, and none of them may appear in the captured output.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { createLogger, REDACTED, requestSerializer, responseSerializer, sanitizeForLog } from '../../src/server/logger.ts';

/** A distinctive random value: if it shows up in the output, it leaked. */
function canary(label: string): string {
  return `${label}${randomBytes(8).toString('hex')}`;
}

function randomDigits(n: number): string {
  let s = '';
  for (const b of randomBytes(n)) s += String(b % 10);
  return s;
}

function base64url(value: string): string {
  return Buffer.from(value).toString('base64url');
}

function capture(level = 'info', secrets: () => readonly string[] = () => []) {
  const chunks: string[] = [];
  const log = createLogger({ level, destination: { write: (s: string) => void chunks.push(s) }, knownSecrets: secrets });
  return {
    log,
    output: (): string => chunks.join(''),
    records: (): Record<string, unknown>[] =>
      chunks
        .join('')
        .split('\n')
        .filter((l) => l.length > 0)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

function expectNoCanary(output: string, canaries: readonly string[]): void {
  for (const c of canaries) {
    expect(c.length).toBeGreaterThanOrEqual(6);
    expect(output, `canary ${c} leaked`).not.toContain(c);
  }
}

describe('createLogger: canaries never reach the output', () => {
  it('does not leak passwords, API keys, refresh tokens, auth headers, cookies, client secrets or DB passwords from logged objects', () => {
    const c = {
      password: canary('pw'),
      apiKey: canary('ak'),
      refreshToken: canary('rt'),
      authorization: canary('az'),
      cookie: canary('ck'),
      clientSecret: canary('cs'),
      dbPassword: canary('db'),
      privateKey: canary('pk'),
    };
    const { log, output, records } = capture();
    log.warn(
      {
        user: { password: c.password, profile: { apiKey: c.apiKey } },
        oauth: { refresh_token: c.refreshToken },
        headers: { authorization: `Bearer ${c.authorization}`, cookie: `sid=${c.cookie}`, accept: 'application/json' },
        clientSecret: c.clientSecret,
        signing: { privateKey: c.privateKey },
        databaseUrl: `postgres://app:${c.dbPassword}@db.internal:5432/gatehouse`,
        code: 'RATE_LIMITED',
        statusCode: 429,
        route: '/v1/orgs/:id',
        maxTokens: 4096,
      },
      'rate limited',
    );

    const out = output();
    expectNoCanary(out, Object.values(c));
    const [rec] = records();
    expect(rec).toMatchObject({
      user: { password: REDACTED, profile: { apiKey: REDACTED } },
      oauth: { refresh_token: REDACTED },
      headers: { authorization: REDACTED, cookie: REDACTED, accept: 'application/json' },
      clientSecret: REDACTED,
      signing: { privateKey: REDACTED },
      databaseUrl: `postgres://app:${REDACTED}@db.internal:5432/gatehouse`,
      // harmless fields are kept intact
      code: 'RATE_LIMITED',
      statusCode: 429,
      route: '/v1/orgs/:id',
      maxTokens: 4096,
      msg: 'rate limited',
    });
  });

  it('does not leak emails, phone numbers, bearer JWTs, known secrets or OAuth URL parameters through the message', () => {
    const local = canary('zq');
    const phoneMiddle = randomDigits(6);
    const phoneLast4 = randomDigits(4);
    const jwtPayload = base64url(JSON.stringify({ sub: canary('sub') }));
    const jwtSig = canary('sig');
    const jwt = `${base64url('{"alg":"HS256","typ":"JWT"}')}.${jwtPayload}.${jwtSig}`;
    const known = canary('known');
    const token = canary('abc123secret');
    const code = canary('xyz');
    const state = canary('st');
    const { log, output, records } = capture('info', () => [known]);

    log.info(
      `login by ${local}@example.com (+1 ${phoneMiddle.slice(0, 3)} ${phoneMiddle.slice(3)} ${phoneLast4}, +1${phoneMiddle}${phoneLast4}) ` +
        `with Bearer ${jwt}, key ${known}, callback https://app.example.com/cb?token=${token}&code=${code}&state=${state}&page=2`,
    );

    const out = output();
    expectNoCanary(out, [local, `1${phoneMiddle}${phoneLast4}`, `${phoneMiddle.slice(3)} ${phoneLast4}`, jwtPayload, jwtSig, jwt, known, token, code, state]);
    const msg = records()[0]?.msg as string;
    // short digit runs could collide with time or pid, so the middle digits are checked in the message only
    expect(msg).not.toContain(phoneMiddle);
    expect(msg).not.toContain(`+1 ${phoneMiddle.slice(0, 3)}`);
    expect(msg).toContain('z***@example.com');
    expect(msg).toContain(`(+1******${phoneLast4}, +1******${phoneLast4})`);
    expect(msg).toContain(`Bearer ${REDACTED}`);
    expect(msg).toContain(`key ${REDACTED}`);
    expect(msg).toContain(`?token=${REDACTED}&code=${REDACTED}&state=${REDACTED}&page=2`);
  });

  it('does not leak known secrets or emails through Error messages, the messages pino derives from them, or stacks', () => {
    const known = canary('errsecret');
    const local = canary('bob');
    const makeError = () => Object.assign(new Error(`connect failed with ${known} for ${local}@corp.example`), { code: 'RATE_LIMITED', extra: known });

    const info = capture('info', () => [known]);
    info.log.error(makeError()); // pino takes the message from the Error
    info.log.error({ err: makeError(), route: '/v1/things' }); // and from `err`
    info.log.error({ err: makeError(), statusCode: 500 }, 'request failed');
    expectNoCanary(info.output(), [known, local]);
    const recs = info.records();
    expect(recs).toHaveLength(3);
    for (const rec of recs) {
      expect(rec.err).toEqual({ type: 'Error', message: `connect failed with ${REDACTED} for b***@corp.example`, code: 'RATE_LIMITED' });
    }
    expect(recs[0]?.msg).toBe(`connect failed with ${REDACTED} for b***@corp.example`);
    expect(recs[1]).toMatchObject({ route: '/v1/things', msg: `connect failed with ${REDACTED} for b***@corp.example` });
    expect(recs[2]).toMatchObject({ statusCode: 500, msg: 'request failed' });

    // At debug the stack is included, scrubbed like the message.
    const debug = capture('debug', () => [known]);
    debug.log.error({ err: makeError() }, 'boom');
    expectNoCanary(debug.output(), [known, local]);
    const stack = (debug.records()[0]?.err as { stack?: string } | undefined)?.stack;
    expect(stack).toContain(`connect failed with ${REDACTED}`);
    expect(stack).toContain('logger.test.ts');
  });

  it('does not crash on, or leak through, deeply nested and cyclic objects', () => {
    const deepSecret = canary('deep');
    const cyclicSecret = canary('cyc');
    let deep: Record<string, unknown> = { password: deepSecret, note: deepSecret };
    for (let i = 0; i < 50; i++) deep = { level: i, child: deep };
    const cyclic: Record<string, unknown> = { name: 'node', token: cyclicSecret };
    cyclic.self = cyclic;
    cyclic.list = [cyclic, { back: cyclic, password: cyclicSecret }];
    const big = Array.from({ length: 1000 }, (_, i) => ({ i, secret: deepSecret }));

    const { log, output, records } = capture('info', () => [deepSecret]);
    expect(() => log.info({ deep, cyclic, big, route: '/v1/x' }, 'shapes')).not.toThrow();

    const out = output();
    expectNoCanary(out, [deepSecret, cyclicSecret]);
    const rec = records()[0] as { cyclic: Record<string, unknown>; big: unknown[]; route: string };
    expect(rec.cyclic).toEqual({ name: 'node', token: REDACTED, self: '[Circular]', list: ['[Circular]', { back: '[Circular]', password: REDACTED }] });
    expect(rec.big).toHaveLength(101);
    expect(rec.big[100]).toBe('[900 more items]');
    expect(out).toContain('[Truncated]');
    expect(rec.route).toBe('/v1/x');
  });

  it('does not leak secrets through printf-style interpolation arguments', () => {
    const bearer = canary('tok');
    const pass = canary('pass');
    const local = canary('eve');
    const { log, output, records } = capture();
    log.info('auth header Bearer %s for %o', bearer, { user: `${local}@example.org`, password: pass, tries: 3 });
    expectNoCanary(output(), [bearer, pass, local]);
    expect(records()[0]?.msg).toBe(`auth header Bearer ${REDACTED} for {"user":"e***@example.org","password":"${REDACTED}","tries":3}`);
  });

  it('does not leak secrets through child logger bindings (per-request loggers)', () => {
    const token = canary('sess');
    const local = canary('amy');
    const { log, output, records } = capture();
    const child = log.child({ requestId: 'req-1', sessionToken: token, user: `${local}@example.com` });
    child.child({ tenant: 't1' }).info({ route: '/v1/me' }, 'hello');
    expectNoCanary(output(), [token, local]);
    expect(records()[0]).toMatchObject({ requestId: 'req-1', sessionToken: REDACTED, user: 'a***@example.com', tenant: 't1', route: '/v1/me' });
  });

  it('does not leak raw request headers or OAuth query parameters through the request serializer', () => {
    const auth = canary('hdr');
    const apiKey = `gh_${canary('key')}${canary('more')}`;
    const code = canary('code');
    const req = {
      method: 'GET',
      url: `/oauth/callback?code=${code}&state=abcdef`,
      id: 'req-7',
      ip: '203.0.113.9',
      headers: { authorization: `Bearer ${auth}`, 'x-api-key': apiKey, cookie: `gh_session=${auth}`, 'user-agent': 'curl/8.0' },
    };
    expect(requestSerializer(req)).toEqual({
      method: 'GET',
      url: `/oauth/callback?code=${REDACTED}&state=${REDACTED}`,
      requestId: 'req-7',
      ip: '203.0.113.9',
      userAgent: 'curl/8.0',
    });
    expect(responseSerializer({ statusCode: 302 })).toEqual({ statusCode: 302 });

    const { log, output, records } = capture();
    log.info({ req: { ...req, socket: {} }, res: { statusCode: 302, setHeader: () => undefined } }, 'request completed');
    expectNoCanary(output(), [auth, apiKey, code]);
    expect(records()[0]).toMatchObject({ req: { requestId: 'req-7', url: `/oauth/callback?code=${REDACTED}&state=${REDACTED}` }, res: { statusCode: 302 } });
  });

  it('does not leak secrets registered after the logger was created (config reload)', () => {
    const before = canary('old');
    const after = canary('new');
    const secrets: string[] = [before];
    const { log, output } = capture('info', () => secrets);
    log.info(`one ${before}`);
    secrets.push(after);
    log.info({ note: `two ${after}` }, `three ${after}`);
    expectNoCanary(output(), [before, after]);
  });

  it('does not leak Gatehouse API keys, JWTs or key=value credentials in free text', () => {
    const apiKey = `gh_${canary('k')}${canary('x')}`;
    const pw = canary('pw');
    const basic = Buffer.from(`admin:${canary('basic')}`).toString('base64');
    const jwtSig = canary('s');
    const jwt = `eyJhbGciOiJIUzI1NiJ9.${base64url('{"sub":"1"}')}.${jwtSig}`;
    const redisPw = canary('redis');
    const { log, output, records } = capture();
    log.info(
      `key=${apiKey}; password=${pw}; {"client_secret":"${pw}"}\nAuthorization: Basic ${basic}\nid_token ${jwt} redis://:${redisPw}@cache:6379 prompt_tokens=1234 code=RATE_LIMITED`,
    );
    expectNoCanary(output(), [apiKey, pw, basic, jwtSig, redisPw]);
    const msg = records()[0]?.msg as string;
    expect(msg).toContain(`password=${REDACTED}`);
    expect(msg).toContain(`"client_secret":"${REDACTED}"`);
    expect(msg).toContain(`Authorization: ${REDACTED}\n`);
    expect(msg).toContain(`redis://:${REDACTED}@cache:6379`);
    // usage figures and error codes stay readable
    expect(msg).toContain('prompt_tokens=1234');
    expect(msg).toContain('code=RATE_LIMITED');
  });

  it('does not leak a Gatehouse API key in the gatehouse_ format, wherever it sits in the text', () => {
    // Shaped like a key (src/gateway/api-key-format.ts); the logger needs no checksum to scrub it.
    const key = `gatehouse_${randomBytes(60).toString('base64').replace(/[^0-9A-Za-z]/g, '').padEnd(54, 'Q').slice(0, 54)}`;
    const { log, output } = capture();
    log.info({ note: `presented(${key})` }, `key ${key}, again:${key}`);
    expectNoCanary(output(), [key, key.slice(10, 58)]);
  });
});

describe('sanitizeForLog', () => {
  it('does not leak values under sensitive key names, and keeps ordinary ones', () => {
    const v = 'value-1234567';
    const redacted = [
      'authorization', 'Proxy-Authorization', 'cookie', 'set-cookie', 'x-api-key', 'password', 'newPassword', 'passwd',
      'clientSecret', 'client_secret', 'accessToken', 'refresh_token', 'id-token', 'apiKey', 'api_key', 'API_KEY', 'key',
      'privateKey', 'private_key', 'signingKey', 'credentials', 'sessionId', 'otp', 'totpCode', 'pin', 'dsn',
      'connectionString', 'csrfToken',
    ];
    const kept = ['code', 'state', 'statusCode', 'route', 'url', 'databaseUrl', 'method', 'userId', 'tenant', 'message'];
    const input = Object.fromEntries([...redacted, ...kept].map((k) => [k, v]));
    const out = sanitizeForLog(input, []) as Record<string, unknown>;
    for (const k of redacted) expect(out[k], k).toBe(REDACTED);
    for (const k of kept) expect(out[k], k).toBe(v);
  });

  it('keeps token counts (numbers) but not token strings, and leaves null/undefined as they are', () => {
    expect(sanitizeForLog({ maxTokens: 4096, promptTokens: 12, token: 'abc', password: null, secret: undefined }, [])).toEqual({
      maxTokens: 4096,
      promptTokens: 12,
      token: REDACTED,
      password: null,
      secret: undefined,
    });
  });

  it('does not scrub short known secrets (common words) but does scrub long ones, URL-encoded too', () => {
    const long = `${canary('a')}/+=`;
    const out = sanitizeForLog({ a: 'admin logged in', b: `x ${long} y`, c: `?q=${encodeURIComponent(long)}` }, ['admin', long]);
    expect(out).toEqual({ a: 'admin logged in', b: `x ${REDACTED} y`, c: `?q=${REDACTED}` });
  });

  it('serialises errors as type, message and code only, without unscrubbed extra properties', () => {
    const secret = canary('e');
    const err = Object.assign(new TypeError(`bad ${secret}`), { code: 'E_BAD', config: { password: secret }, body: secret });
    expect(sanitizeForLog(err, [secret])).toEqual({ type: 'TypeError', message: `bad ${REDACTED}`, code: 'E_BAD' });
    const withStack = sanitizeForLog(err, [secret], { includeStack: true }) as { stack?: string };
    expect(withStack.stack).toMatch(/^TypeError: bad \[REDACTED\]/);
  });
});

describe('bounded work per log call', () => {
  it('cuts strings past 16 KiB before scrubbing, so a huge hostile value cannot stall the logger', () => {
    const hostile = 'a@' + 'a.'.repeat(200_000) + '1';
    const out = JSON.stringify(sanitizeForLog({ m: hostile }, []));
    expect(out).toMatch(/…\[\d+ more chars\]/);
    expect(out.length).toBeLessThan(20_000);
  });
});
