#!/usr/bin/env -S node --liftoff-only --max-semi-space-size=8
// The same flags as package.json's start script (test/cli/start-flags.test.ts keeps them equal); see
// "Memory" in README.md: --liftoff-only keeps the embedded database's WebAssembly on V8's baseline
// compiler, --max-semi-space-size=8 caps V8's young generation at 16 MB instead of 64 MB under load.
// Gatehouse runs its TypeScript sources directly on Node's type stripping (Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`gatehouse needs Node 22.18 or newer (this is ${process.version}); run it through npm (npm start / npx gatehouse), which uses the pinned Node 24.\n`);
  process.exit(2);
}
await import('../src/cli/main.ts');
