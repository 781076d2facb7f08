/**
 * Access-token verification benchmark (AUTH-3): verifications per second of
 * `createAccessTokenVerifier(...).verify` for one valid token, warm key cache, one process.
 *
 *   node bench/auth-verify.ts
 *
 * The key set holds six published keys (access-token and audit-checkpoint keys in states
 * next/current/previous, as the JWKS does) and is fetched once: keyCacheMs is longer than the
 * run, so the figure is the warm path (parse, header checks, Map lookup, Ed25519 verify, claims).
 * A short warm-up is discarded; then one measured run. Every batch checks the returned `jti`, so
 * the work cannot be optimized away or silently wrong. Exits non-zero on a wrong result or when
 * the run exceeds its deadline.
 *
 * Knobs (environment): BENCH_SECONDS (measured run, default 4), BENCH_WARMUP_SECONDS (default 0.5).
 */
import { generateSigningKey, signEd25519 } from '../src/crypto/signing.ts';
import { createAccessTokenVerifier, issueAccessToken } from '../src/identity/access-tokens.ts';
import { envSeconds } from './env.ts';

const BATCH = 256;

const measuredSeconds = envSeconds('BENCH_SECONDS', 4);
const warmupSeconds = envSeconds('BENCH_WARMUP_SECONDS', 0.5);
const deadlineMs = (warmupSeconds + measuredSeconds) * 1000 + 10_000;
const deadline = setTimeout(() => {
  console.error(`FAILED: the benchmark did not finish within ${(deadlineMs / 1000).toFixed(0)} s`);
  process.exit(2);
}, deadlineMs);

// --- fixtures --------------------------------------------------------------------------------

const pairs = Array.from({ length: 6 }, () => generateSigningKey());
const current = pairs[1];
if (current === undefined) throw new Error('no key');
let keyFetches = 0;
const verifier = createAccessTokenVerifier({
  issuer: 'https://gatehouse.bench',
  audience: 'gatehouse-api',
  keyCacheMs: 3_600_000,
  keys: async () => {
    keyFetches++;
    return { keys: pairs.map((p) => p.publicJwk) };
  },
});
const signer = { kid: current.kid, sign: (data: Buffer) => signEd25519(current.privatePkcs8, data) };
const { token, claims } = await issueAccessToken(signer, { sub: 'user-0001', sid: 'session-0001' }, {
  issuer: 'https://gatehouse.bench',
  audience: 'gatehouse-api',
  ttlSeconds: 3600,
});

async function run(seconds: number): Promise<{ ops: number; seconds: number; opsPerSec: number }> {
  const budget = BigInt(Math.round(seconds * 1e9));
  const start = process.hrtime.bigint();
  let count = 0;
  let elapsed: bigint;
  do {
    let jti = '';
    for (let i = 0; i < BATCH; i++) jti = (await verifier.verify(token)).jti;
    if (jti !== claims.jti) throw new Error('verify returned the wrong claims');
    count += BATCH;
    elapsed = process.hrtime.bigint() - start;
  } while (elapsed < budget);
  const secs = Number(elapsed) / 1e9;
  return { ops: count, seconds: secs, opsPerSec: count / secs };
}

await run(warmupSeconds);
const result = await run(measuredSeconds);
if (keyFetches !== 1) throw new Error(`the key set was fetched ${keyFetches} times; expected once (warm cache)`);
clearTimeout(deadline);

console.log(`auth-verify: ${Math.round(result.opsPerSec)} verifications/s (${result.ops} in ${result.seconds.toFixed(2)} s; Ed25519 EdDSA, ${token.length}-byte token, warm key cache, node ${process.version})`);
