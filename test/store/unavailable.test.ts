/**
 * Which failures mean "a store could not answer" (503 + Retry-After) and which are bugs or
 * answers (left to the caller, usually 500 or a 4xx).
 */
import { describe, expect, it } from 'vitest';
import { DependencyUnavailableError, isDependencyUnavailable } from '../../src/store/unavailable.ts';

const withCode = (message: string, code: string): Error => Object.assign(new Error(message), { code });

describe('isDependencyUnavailable', () => {
  it('recognises connection failures of PostgreSQL, node-postgres and the kv adapters', () => {
    for (const err of [
      new DependencyUnavailableError('kv', 'kv: Redis get failed'),
      withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED'),
      new AggregateError([withCode('connect ECONNREFUSED ::1:5432', 'ECONNREFUSED')], ''),
      withCode('terminating connection due to administrator command', '57P01'),
      withCode('the database system is starting up', '57P03'),
      withCode('connection failure', '08006'),
      withCode('sorry, too many clients already', '53300'),
      new Error('Connection terminated unexpectedly'),
      new Error('timeout exceeded when trying to connect'),
      new Error('keyring: could not load', { cause: withCode('read ECONNRESET', 'ECONNRESET') }),
    ]) {
      expect(isDependencyUnavailable(err), err.message).toBe(true);
    }
  });

  it('leaves answers and bugs alone', () => {
    for (const err of [
      withCode('duplicate key value violates unique constraint', '23505'),
      withCode('syntax error at or near "selec"', '42601'),
      withCode('permission denied for table users', '42501'),
      new TypeError('cannot read properties of undefined'),
      new Error('kv: unexpected reply from Redis script'),
      'ECONNREFUSED',
      null,
    ]) {
      expect(isDependencyUnavailable(err), String(err)).toBe(false);
    }
  });

  it('a cause cycle ends', () => {
    const a = new Error('a');
    const b = new Error('b', { cause: a });
    (a as { cause?: unknown }).cause = b;
    expect(isDependencyUnavailable(a)).toBe(false);
  });
});
