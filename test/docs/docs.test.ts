/**
 * The reference docs are generated from the code and must not drift: config.md from the schema,
 * guards.md from the live route table, errors.md from the code registry. Every code thrown
 * anywhere in src/ must be documented, and controls.md must name only files that exist.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderDocs } from '../../scripts/gen-docs.ts';
import { allErrorCodes } from '../../src/server/errors.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)]));
}

describe('generated docs are current', () => {
  it('docs/config.md, docs/guards.md and docs/errors.md equal what `npm run docs` produces', async () => {
    const docs = await renderDocs();
    for (const [path, text] of Object.entries(docs)) {
      const committed = readFileSync(join(ROOT, path), 'utf8');
      expect(committed, `${path} is stale: run npm run docs`).toBe(text);
    }
  });
});

describe('error codes', () => {
  it('every code thrown in src/ is in the registry that docs/errors.md is generated from', async () => {
    await renderDocs(); // registers the features' codes
    const thrown = new Set<string>();
    for (const file of walk(join(ROOT, 'src')).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/new (?:AppError|GatewayError)\(\s*'([A-Z0-9_]+)'/g)) thrown.add(`${m[1]}`);
      for (const m of text.matchAll(/sendError\([^,]+,[^,]+,\s*'([A-Z0-9_]+)'/g)) thrown.add(`${m[1]}`);
      for (const m of text.matchAll(/return \{ code: '([A-Z0-9_]+)'/g)) thrown.add(`${m[1]}`);
    }
    expect(thrown.size).toBeGreaterThan(10);
    const errorsMd = readFileSync(join(ROOT, 'docs/errors.md'), 'utf8');
    for (const code of thrown) {
      expect(allErrorCodes().has(code), `${code} is thrown but not registered`).toBe(true);
      expect(errorsMd, `${code} is not in docs/errors.md`).toContain(`| \`${code}\` |`);
    }
  });
});

describe.each(['docs/controls.md', 'docs/asvs.md'])('%s', (doc) => {
  it('names only source and test files that exist', () => {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    const paths = [...text.matchAll(/`((?:src|test|scripts|bench|\.ci)\/[^`*]+?)`/g)].map((m) => m[1] as string);
    expect(paths.length).toBeGreaterThan(10);
    for (const p of paths) expect(existsSync(join(ROOT, p)), `${p} in ${doc} does not exist`).toBe(true);
  });

  it('cites only ASVS 5.0 requirement ids that exist', () => {
    const asvsPath = join(ROOT, '../shared/asvs/ASVS-5.0.0-en.flat.json');
    if (!existsSync(asvsPath)) {
      if (process.env.CI) throw new Error('../shared is required in CI');
      console.warn('skipped: ../shared/asvs is not beside this checkout');
      return;
    }
    const ids = new Set(
      (JSON.parse(readFileSync(asvsPath, 'utf8')) as { requirements: { req_id: string }[] }).requirements.map((r) => r.req_id),
    );
    const text = readFileSync(join(ROOT, doc), 'utf8');
    const cited = [...new Set([...text.matchAll(/\bV\d+\.\d+\.\d+\b/g)].map((m) => m[0]))];
    expect(cited.length).toBeGreaterThan(5);
    for (const id of cited) expect(ids.has(id), `ASVS ${id} does not exist in 5.0`).toBe(true);
    expect(relative(ROOT, asvsPath)).toContain('shared');
  });
});
