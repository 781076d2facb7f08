/**
 * Run as a child process by test/cli/startup-packages.test.ts: records every npm package that is
 * resolved while a node starts (the wiring of `gatehouse start`, through createTestApp) and answers
 * one request, then prints `{ packages, files }` as JSON on standard output: the package names, and
 * each file's path from its package's name on (`pg/lib/utils.js`).
 */
import { registerHooks } from 'node:module';
import { packageOf } from './package-of.ts';

const packages = new Set<string>();
const files = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    const pkg = packageOf(resolved.url);
    if (pkg) {
      packages.add(pkg.name);
      files.add(pkg.path);
    }
    return resolved;
  },
});

const { createTestApp } = await import('./app.ts');
const t = await createTestApp();
const health = await t.app.inject({ method: 'GET', url: '/healthz' });
await t.close();
if (health.statusCode !== 200) throw new Error(`/healthz answered ${health.statusCode}`);
process.stdout.write(JSON.stringify({ packages: [...packages].sort(), files: [...files].sort() }));
