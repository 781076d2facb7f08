/**
 * The console's size budget (issue 25): the JavaScript and CSS the first screen needs (the entry
 * chunk, what it imports, and the sign-in page a signed-out visitor lands on), gzip-compressed,
 * stay under 250 KB. Read from the build's manifest (console/dist/.vite/manifest.json).
 */
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { CONSOLE_DIST } from '../../src/console/index.ts';

interface Chunk {
  file: string;
  isEntry?: boolean;
  imports?: string[];
  css?: string[];
}

const BUDGET_BYTES = 250 * 1024;

/** The files a chunk needs at once: itself, its CSS and, recursively, its static imports. */
export function filesOf(manifest: Record<string, Chunk>, key: string, seen = new Set<string>()): Set<string> {
  const chunk = manifest[key];
  if (!chunk || seen.has(chunk.file)) return seen;
  seen.add(chunk.file);
  for (const css of chunk.css ?? []) seen.add(css);
  for (const imported of chunk.imports ?? []) filesOf(manifest, imported, seen);
  return seen;
}

describe('console size budget', () => {
  it('the first screen (entry + sign-in page) ships under 250 KB of JavaScript and CSS, gzip-compressed', () => {
    const manifest = JSON.parse(readFileSync(`${CONSOLE_DIST}.vite/manifest.json`, 'utf8')) as Record<string, Chunk>;
    const entry = Object.keys(manifest).find((k) => manifest[k]?.isEntry);
    expect(entry).toBe('index.html');
    const files = filesOf(manifest, entry ?? '');
    filesOf(manifest, 'src/pages/sign-in/SignInPage.tsx', files);
    expect([...files].some((f) => f.endsWith('.js'))).toBe(true);
    expect([...files].some((f) => f.endsWith('.css'))).toBe(true);
    const sizes = [...files].map((f) => ({ f, gzip: gzipSync(readFileSync(`${CONSOLE_DIST}${f}`), { level: 9 }).length }));
    const total = sizes.reduce((sum, s) => sum + s.gzip, 0);
    console.log(`console first screen: ${(total / 1024).toFixed(1)} KB gzip in ${sizes.length} files`);
    expect(total).toBeLessThan(BUDGET_BYTES);
  });
});
