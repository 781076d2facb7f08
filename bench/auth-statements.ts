/**
 * Where a sign-in's time goes in the embedded database (`npm run bench:auth-statements`): one
 * in-process node on in-memory PGlite, one user, 20 warm-up sign-ins, then 100 measured ones
 * through `POST /v1/auth/login` (same device cookie each time). Every call into PGlite's protocol
 * (`execProtocol`) is timed and counted, grouped by prepared statement; the script prints the
 * milliseconds and calls per sign-in of each statement and the total. Sequential, loopback free
 * (inject), about 15 s. It measures PGlite time on the server's thread only: Argon2 runs on the
 * thread pool and is not counted, nor are the BEGIN and COMMIT that PGlite's transaction() sends
 * on a path of its own.
 */
import { PGlite } from '@electric-sql/pglite';
import { createTestApp } from '../test/support/app.ts';
import { signUpUser, TEST_PASSWORD } from '../test/support/users.ts';
import { runWithStartFlags } from './env.ts';

const WARM = 20;
const N = 100;
const proto = PGlite.prototype as unknown as { execProtocol: (...args: unknown[]) => Promise<unknown> };
const original = proto.execProtocol;
const times = new Map<string, { calls: number; ms: number }>();
const statementText = new Map<string, string>();
let measuring = false;
proto.execProtocol = async function (this: unknown, ...args: unknown[]) {
  const text = Buffer.from(args[0] as Uint8Array).toString('latin1');
  const parsed = /P.{4}(gh_\d+)\0([^\0]{0,80})/s.exec(text);
  if (parsed?.[1]) statementText.set(parsed[1], (parsed[2] ?? '').replace(/\s+/g, ' '));
  const bound = /B.{4}\0(gh_\d+)\0/s.exec(text);
  const key = bound?.[1] ?? text.slice(5, 45).replace(/[^ -~]+/g, ' ').trim();
  const t0 = performance.now();
  try {
    return await original.apply(this, args);
  } finally {
    if (measuring) {
      const entry = times.get(key) ?? { calls: 0, ms: 0 };
      entry.calls += 1;
      entry.ms += performance.now() - t0;
      times.set(key, entry);
    }
  }
};

// Measured as `npm start` runs a node: with its Node flags (see runWithStartFlags in env.ts).
await runWithStartFlags();
const t = await createTestApp({ overrides: { 'rateLimit.enabled': false } });
const u = await signUpUser(t.app, t.mail, 'statements@example.test');
const first = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: u.email, password: TEST_PASSWORD } });
const device = first.cookies.find((c) => c.name === '__Host-gh_device')?.value ?? '';
const signIn = async (): Promise<void> => {
  const res = await t.app.inject({ method: 'POST', url: '/v1/auth/login', payload: { email: u.email, password: TEST_PASSWORD }, cookies: { '__Host-gh_device': device } });
  if (res.statusCode !== 200) throw new Error(`sign-in answered ${res.statusCode}`);
};
for (let i = 0; i < WARM; i += 1) await signIn();
measuring = true;
for (let i = 0; i < N; i += 1) await signIn();
measuring = false;
let totalMs = 0;
let totalCalls = 0;
console.log(`PGlite per sign-in, ${N} sign-ins after ${WARM} warm-up:`);
for (const [key, v] of [...times].sort((a, b) => b[1].ms - a[1].ms)) {
  totalMs += v.ms;
  totalCalls += v.calls;
  console.log(`  ${(v.ms / N).toFixed(3)} ms  ${(v.calls / N).toFixed(1)} calls  ${statementText.get(key) ?? key}`);
}
console.log(`total: ${(totalMs / N).toFixed(2)} ms and ${(totalCalls / N).toFixed(1)} protocol calls per sign-in`);
await t.close();
