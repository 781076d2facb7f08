/**
 * Live checks of what the keyring protects: crypto-shredding proved now on a canary and asked of
 * the database for every deleted account (DATA-3), and second-factor secrets stored only sealed or
 * hashed (AUTH-7).
 */
import { ENVELOPE_PREFIX } from '../crypto/envelope.ts';
import { PLATFORM_TENANT_ID } from '../keyring/keyring.ts';
import type { TrustCheck } from './types.ts';

const shreddingCheck: TrustCheck = {
  control: 'DATA-3',
  name: 'crypto-shredding',
  run: async (ctx) => {
    // A canary subject: seal, shred its key, and the sealed value must no longer open. The keyring
    // does it in a transaction it rolls back, so a report leaves no key tombstone behind.
    const { destroyed, opened: after } = await ctx.keyring.probeShredding();
    const { rows } = await ctx.db.withTenant(PLATFORM_TENANT_ID, (tx) =>
      tx.query<{ deleted: number; live: number }>(
        "select (select count(*)::int from users where status = 'deleted') as deleted, (select count(distinct k.subject_id)::int from data_keys k join users u on u.id = k.subject_id where u.status = 'deleted' and k.state <> 'destroyed') as live",
      ),
    );
    const { deleted = 0, live = 0 } = rows[0] ?? {};
    const evidence = [`a canary sealed under a new personal-data key, its ${destroyed} key(s) destroyed, then opened: ${after} (in a transaction rolled back: nothing kept)`, `${deleted} deleted accounts, ${live} of them with a personal-data key not destroyed`];
    if (after !== 'KEY_DESTROYED') return { state: 'failed', evidence, why: 'a value sealed under a destroyed key did not fail as destroyed' };
    if (live > 0) return { state: 'failed', evidence, why: `${live} deleted accounts still have a personal-data key: their sealed data is readable` };
    return { state: 'active', evidence };
  },
};

const mfaSecretsCheck: TrustCheck = {
  control: 'AUTH-7',
  name: 'second-factor-secrets-sealed',
  run: async (ctx) => {
    const { rows } = await ctx.db.query<{ factors: number; unsealed: number; codes: number; unhashed: number }>(
      "select (select count(*)::int from mfa_factors where deleted_at is null) as factors, (select count(*)::int from mfa_factors where deleted_at is null and left(secret_sealed, $1) <> $2) as unsealed, (select count(*)::int from recovery_codes where used_at is null and voided_at is null) as codes, (select count(*)::int from recovery_codes where used_at is null and voided_at is null and code_hash !~ '^[A-Za-z0-9_-]{43}$') as unhashed",
      [ENVELOPE_PREFIX.length, ENVELOPE_PREFIX],
    );
    const { factors = 0, unsealed = 0, codes = 0, unhashed = 0 } = rows[0] ?? {};
    const evidence = [`${factors} TOTP factors, ${factors - unsealed} with the secret sealed`, `${codes} unused recovery codes, ${codes - unhashed} stored as SHA-256 hashes`];
    if (unsealed > 0 || unhashed > 0) return { state: 'failed', evidence, why: 'second-factor secrets are stored readable' };
    return { state: 'active', evidence };
  },
};

export const KEY_CHECKS: readonly TrustCheck[] = [shreddingCheck, mfaSecretsCheck];
