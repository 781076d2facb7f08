#!/usr/bin/env -S node --liftoff-only
// --liftoff-only: see "Memory" in README.md (the embedded database's WebAssembly stays on V8's baseline compiler).
// Gatehouse runs its TypeScript sources directly on Node's type stripping (Node >= 22.18).
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`gatehouse needs Node 22.18 or newer (this is ${process.version}); run it through npm (npm start / npx gatehouse), which uses the pinned Node 24.\n`);
  process.exit(2);
}
await import('../src/cli/main.ts');
