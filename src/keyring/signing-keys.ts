/**
 * Ed25519 signing keys for access tokens, audit checkpoints and gateway client tokens (DATA-1). Private halves are
 * sealed under the platform's data key. A key is published in the JWKS as `next` one rotation
 * before it signs, so verifiers have it before the first token it signs reaches them; the key
 * it replaces stays published as `previous` until the following rotation.
 */
import { ed25519Signer, generateSigningKey, type SigningKeyPair } from '../crypto/signing.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';
import { PLATFORM_TENANT_ID, type Keyring } from './keyring.ts';

export const SIGNING_PURPOSES = ['access-token', 'audit-checkpoint', 'client-token'] as const;
export type SigningPurpose = (typeof SIGNING_PURPOSES)[number];
const CHANNEL = 'keyring:signing';

export type PublicJwk = SigningKeyPair['publicJwk'];

export interface Signer {
  kid: string;
  sign(data: Buffer): Buffer;
}

export interface SigningKeys {
  /** Creates the first current and next keys of each purpose when missing. */
  ensure(): Promise<void>;
  /** The current signer of a purpose (cached; evicted on rotation on every node). */
  current(purpose: SigningPurpose): Promise<Signer>;
  /** Public keys in state next, current or previous (of one purpose, or all for /.well-known/jwks.json). */
  jwks(purpose?: SigningPurpose): Promise<{ keys: PublicJwk[] }>;
  /** next -> current, current -> previous, previous -> retired, and a new next. */
  rotate(purpose: SigningPurpose, options?: { dryRun?: boolean }): Promise<{ activated: string; published: string; retired: string | null }>;
  list(): Promise<{ kid: string; purpose: SigningPurpose; state: string }[]>;
  /** The public keys with these kids, whatever their state (retired keys still verify old audit checkpoints). */
  publicKeys(kids: readonly string[]): Promise<PublicJwk[]>;
  close(): Promise<void>;
}

const REF = (kid: string) => ({ table: 'signing_keys', column: 'private_sealed', rowId: kid });

export async function createSigningKeys(options: { db: Db; kv: Kv; keyring: Keyring; cacheTtlMs?: number; now?: () => number }): Promise<SigningKeys> {
  const { db, kv, keyring } = options;
  const now = options.now ?? Date.now;
  const ttl = options.cacheTtlMs ?? 30_000;
  const signers = new Map<SigningPurpose, { signer: Signer; expiresAt: number }>();
  const unsubscribe = await kv.subscribe(CHANNEL, () => signers.clear());

  interface PreparedKey {
    kid: string;
    publicJwk: PublicJwk;
    sealed: string;
  }

  /** Generates and seals a key outside any transaction (sealing opens its own). */
  async function prepareKey(): Promise<PreparedKey> {
    const pair = generateSigningKey();
    const sealed = await keyring.seal({ tenantId: PLATFORM_TENANT_ID }, REF(pair.kid), pair.privatePkcs8);
    pair.privatePkcs8.fill(0);
    return { kid: pair.kid, publicJwk: pair.publicJwk, sealed };
  }

  async function insertKey(tx: Queryable, purpose: SigningPurpose, key: PreparedKey, state: 'next' | 'current'): Promise<string> {
    await tx.query(
      `insert into signing_keys (kid, purpose, public_jwk, private_sealed, state, activated_at) values ($1, $2, $3, $4, $5, ${state === 'current' ? 'now()' : 'null'})`,
      [key.kid, purpose, JSON.stringify(key.publicJwk), key.sealed, state],
    );
    return key.kid;
  }

  async function ensure(): Promise<void> {
    // The platform DEK is created outside the transaction below (the keyring uses its own).
    await keyring.activeDekId({ tenantId: PLATFORM_TENANT_ID });
    for (const purpose of SIGNING_PURPOSES) {
      const present = await db.query<{ state: string }>("select state from signing_keys where purpose = $1 and state in ('current', 'next')", [purpose]);
      if (present.rows.length === 2) continue;
      const [forCurrent, forNext] = [await prepareKey(), await prepareKey()];
      try {
        await db.transaction(async (tx) => {
          const r = await tx.query<{ state: string }>("select state from signing_keys where purpose = $1 and state in ('current', 'next')", [purpose]);
          const states = new Set(r.rows.map((row) => row.state));
          if (!states.has('current')) await insertKey(tx, purpose, forCurrent, 'current');
          if (!states.has('next')) await insertKey(tx, purpose, forNext, 'next');
        });
      } catch (err) {
        // Two nodes starting at once: the unique index lets one win; the other finds its keys.
        if ((err as { code?: string }).code !== '23505') throw err;
      }
    }
  }

  async function current(purpose: SigningPurpose): Promise<Signer> {
    const cached = signers.get(purpose);
    if (cached && cached.expiresAt > now()) return cached.signer;
    const r = await db.query<{ kid: string; private_sealed: string }>(
      "select kid, private_sealed from signing_keys where purpose = $1 and state = 'current'",
      [purpose],
    );
    const row = r.rows[0];
    if (!row) throw new Error(`no current ${purpose} signing key: start the server once or run gatehouse keys rotate signing`);
    const pkcs8 = await keyring.open({ tenantId: PLATFORM_TENANT_ID }, REF(row.kid), row.private_sealed);
    const signer: Signer = { kid: row.kid, sign: ed25519Signer(pkcs8) };
    pkcs8.fill(0);
    signers.set(purpose, { signer, expiresAt: now() + ttl });
    return signer;
  }

  async function jwks(purpose?: SigningPurpose): Promise<{ keys: PublicJwk[] }> {
    const r = await db.query<{ public_jwk: PublicJwk | string }>(
      "select public_jwk from signing_keys where state in ('next', 'current', 'previous') and ($1::text is null or purpose = $1) order by purpose, created_at",
      [purpose ?? null],
    );
    return { keys: r.rows.map((row) => (typeof row.public_jwk === 'string' ? (JSON.parse(row.public_jwk) as PublicJwk) : row.public_jwk)) };
  }

  async function rotate(purpose: SigningPurpose, opts: { dryRun?: boolean } = {}): Promise<{ activated: string; published: string; retired: string | null }> {
    await ensure();
    const plan = await db.query<{ kid: string; state: string }>(
      "select kid, state from signing_keys where purpose = $1 and state in ('next', 'current', 'previous')",
      [purpose],
    );
    const byState = new Map(plan.rows.map((r) => [r.state, r.kid]));
    if (opts.dryRun) {
      return { activated: byState.get('next') ?? '?', published: '(new key)', retired: byState.get('previous') ?? null };
    }
    const fresh = await prepareKey();
    const result = await db.transaction(async (tx) => {
      const retired = await tx.query<{ kid: string }>(
        "update signing_keys set state = 'retired', retired_at = now() where purpose = $1 and state = 'previous' returning kid",
        [purpose],
      );
      await tx.query("update signing_keys set state = 'previous' where purpose = $1 and state = 'current'", [purpose]);
      const activated = await tx.query<{ kid: string }>(
        "update signing_keys set state = 'current', activated_at = now() where purpose = $1 and state = 'next' returning kid",
        [purpose],
      );
      const published = await insertKey(tx, purpose, fresh, 'next');
      return { activated: activated.rows[0]?.kid ?? '', published, retired: retired.rows[0]?.kid ?? null };
    });
    signers.clear();
    await kv.publish(CHANNEL, purpose);
    return result;
  }

  async function list(): Promise<{ kid: string; purpose: SigningPurpose; state: string }[]> {
    const r = await db.query<{ kid: string; purpose: SigningPurpose; state: string }>('select kid, purpose, state from signing_keys order by purpose, created_at');
    return r.rows;
  }

  async function publicKeys(kids: readonly string[]): Promise<PublicJwk[]> {
    if (kids.length === 0) return [];
    const { rows } = await db.query<{ public_jwk: PublicJwk }>('select public_jwk from signing_keys where kid = any($1::text[]) order by kid', [[...kids]]);
    return rows.map((r) => r.public_jwk);
  }

  return { ensure, current, jwks, rotate, list, publicKeys, close: unsubscribe };
}
