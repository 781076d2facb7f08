/**
 * The reference docs are generated from the code and must not drift: config.md from the schema,
 * guards.md from the live route table, errors.md from the code registry. Every code thrown
 * anywhere in src/ must be documented, and controls.md must name only files that exist, citing
 * each test file's claims by phrases of its own test titles (the rule is at the top of
 * docs/controls.md).
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

/** A test, describe or suite title as written in the source: `it('…'`, `test("…"`, `describe(\`…\``, `it.each(…)('…'`. */
// eslint-disable-next-line security/detect-unsafe-regex -- reads this repository's own test files, not input
const TITLE = /(?:^|[^\w.])(?:it|test|describe)(?:\.\w+(?:\([^()]*\))?)*\)?\(\s*(['"`])((?:\\.|(?!\1)[\s\S])*?)\1/g;
const normalise = (text: string): string => text.replace(/\\(['"`])/g, '$1').replace(/\s+/g, ' ').toLowerCase();

/** Every literal title in a test file, normalised (interpolations stay as written). */
function testTitles(source: string): string[] {
  return [...source.matchAll(TITLE)].map((m) => normalise(m[2] ?? ''));
}

/** A cited test file, and the text right after its closing backtick. */
const CITED_TEST = /`((?:src|test)\/[^`]+\.(?:test|shared-suite)\.ts)`/g;
/** The claims after a cited test file: `("phrase", "phrase")`. */
// eslint-disable-next-line security/detect-unsafe-regex -- reads this repository's own docs, not input
const CLAIMS = /^ \(((?:"[^"]+", )*"[^"]+")\)/;

/** What is wrong with each claim of a doc (empty when every claim is made by a test title). */
function claimProblems(doc: string, text: string, read: (path: string) => string): string[] {
  const problems: string[] = [];
  for (const m of text.matchAll(CITED_TEST)) {
    const path = m[1] as string;
    const after = text.slice((m.index ?? 0) + m[0].length);
    if (!after.startsWith(' (')) continue;
    const claims = CLAIMS.exec(after);
    if (!claims) {
      problems.push(`${doc}: the claims after ${path} must be "quoted phrases" separated by ", " (see the top of docs/controls.md): ${after.slice(0, 80)}`);
      continue;
    }
    const titles = testTitles(read(path));
    for (const phrase of (claims[1] as string).matchAll(/"([^"]+)"/g)) {
      const wanted = normalise(phrase[1] as string);
      if (!titles.some((title) => title.includes(wanted))) problems.push(`${doc}: no test title in ${path} contains "${phrase[1]}"`);
    }
  }
  return problems;
}

describe('the claim checker', () => {
  const source = "describe('sign-in', () => {\n  it('refuses a wrong password with 401', async () => {});\n  it.each([1])(\"locks out after %i tries\", () => {});\n  test(`won\\'t leak ${x} anywhere`, () => {});\n});";
  const read = (): string => source;
  it('accepts phrases found in it/test/describe titles, ignoring case and spacing', () => {
    expect(claimProblems('d', '`test/a.test.ts` ("Refuses a wrong  password", "locks out after", "won\'t leak", "sign-in")', read)).toEqual([]);
    expect(claimProblems('d', '`test/a.test.ts`, plain citation', read)).toEqual([]);
  });
  it('refuses a phrase no title contains, and claims written as prose', () => {
    expect(claimProblems('d', '`test/a.test.ts` ("refuses a wrong password", "locks out forever")', read)).toEqual(['d: no test title in test/a.test.ts contains "locks out forever"']);
    expect(claimProblems('d', '`test/a.test.ts` (wrong password refused)', read)[0]).toMatch(/must be "quoted phrases"/);
  });
});

describe.each(['docs/controls.md', 'docs/asvs.md'])('%s', (doc) => {
  it('cites each test file\'s claims by phrases of that file\'s own test titles', () => {
    const text = readFileSync(join(ROOT, doc), 'utf8');
    expect(claimProblems(doc, text, (path) => readFileSync(join(ROOT, path), 'utf8'))).toEqual([]);
  });

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
