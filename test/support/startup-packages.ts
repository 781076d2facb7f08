/**
 * Run as a child process by test/cli/startup-packages.test.ts: records every npm package that is
 * resolved while a node starts (the wiring of `gatehouse start`, through createTestApp) and answers
 * one request, then prints `{ packages, files }` as JSON on standard output: the package names, and
 * each file's path from its package's name on (`pg/lib/utils.js`).
 */
import { registerHooks } from 'node:module';

const packages = new Set<string>();
const files = new Set<string>();
registerHooks({
  resolve(specifier, context, nextResolve) {
    const resolved = nextResolve(specifier, context);
    const at = resolved.url.lastIndexOf('/node_modules/');
    if (at !== -1) {
      const path = resolved.url.slice(at + '/node_modules/'.length);
      const parts = path.split('/');
      const name = parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : (parts[0] ?? '');
      packages.add(name);
      files.add(path);
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
