/**
 * One source for the Node flags a node runs with: package.json's start script. `npm run
 * gatehouse`, the `gatehouse` binary and every bench that starts a node use the same flags, so
 * what the benches measure (peak RSS above all) is what `npm start` runs.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { serverChildFlags, startScriptFlags } from '../../bench/env.ts';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> };
const flagsOf = (command: string): string[] => {
  const words = command.split(/\s+/);
  const at = words.indexOf('node');
  const flags: string[] = [];
  for (const word of words.slice(at + 1)) {
    if (!word.startsWith('--')) break;
    flags.push(word);
  }
  return flags;
};

describe('Node flags of a node', () => {
  it('npm start caps the young generation and keeps the embedded database on the baseline compiler', () => {
    expect(startScriptFlags()).toEqual(['--liftoff-only', '--max-semi-space-size=8']);
  });

  it('npm run gatehouse and bin/gatehouse.js use exactly the start script flags', () => {
    expect(flagsOf(pkg.scripts.gatehouse ?? '')).toEqual(startScriptFlags());
    const shebang = readFileSync(new URL('../../bin/gatehouse.js', import.meta.url), 'utf8').split('\n')[0] ?? '';
    expect(shebang.startsWith('#!/usr/bin/env -S node ')).toBe(true);
    expect(flagsOf(shebang.replace('#!/usr/bin/env -S ', ''))).toEqual(startScriptFlags());
  });

  it('the gateway benches start every server with the start script flags, nothing else by default', () => {
    const saved = process.env.BENCH_NODE_FLAGS;
    delete process.env.BENCH_NODE_FLAGS;
    try {
      expect(serverChildFlags()).toEqual(startScriptFlags());
    } finally {
      if (saved !== undefined) process.env.BENCH_NODE_FLAGS = saved;
    }
  });
});
