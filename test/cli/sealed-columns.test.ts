/**
 * `gatehouse keys rotate dek` re-encrypts the columns in SEALED_COLUMNS without starting a server;
 * this pins that list to what a running node's features declare, so a new sealed column cannot be
 * left out of rotation.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SEALED_COLUMNS } from '../../src/features.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

let t: TestApp;
beforeAll(async () => {
  t = await createTestApp();
});
afterAll(async () => t.close());

describe('sealed columns known to the CLI', () => {
  it('equal every sealed column the running node declares (identity and gateway included)', () => {
    const key = (c: { table: string; column: string }): string => `${c.table}.${c.column}`;
    const declared = t.node.features.flatMap((f) => f.sealedColumns ?? []).map(key).sort();
    expect([...SEALED_COLUMNS].map(key).sort()).toEqual(declared);
    expect(declared).toEqual(expect.arrayContaining(['mfa_factors.secret_sealed', 'provider_credentials.api_key_sealed', 'signing_keys.private_sealed']));
  });
});
