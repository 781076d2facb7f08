/**
 * The architecture refuses import cycles (docs: /ARCHITECTURE.md "Layers"): a cycle makes module
 * evaluation order depend on who is imported first (a value read before its module ran is
 * `undefined` at runtime), and a type cycle is where a feature's parts stop being separable.
 * No cycle-detection package is installed, so the graph is built here from the TypeScript parser.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildImportGraph, findCycles, readSpecifiers, type ImportGraph } from './import-graph.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/**
 * Cycles known and accepted for now, each as its sorted list of files, with why. Empty: every
 * cycle found when this test was written was removed by moving the shared piece into its own module.
 */
const ALLOWED_CYCLES: ReadonlyArray<{ files: string[]; why: string }> = [];

const describeCycle = (files: string[], graph: ImportGraph): string => {
  const inside = new Set(files);
  const edges = graph.edges.filter((e) => inside.has(e.from) && inside.has(e.to));
  return `${files.join(', ')}\n${edges.map((e) => `    ${e.from} -> ${e.to}${e.typeOnly ? ' (type only)' : ''}`).join('\n')}`;
};

const notAllowed = (cycles: string[][]): string[][] =>
  cycles.filter((c) => !ALLOWED_CYCLES.some((a) => a.files.join('\n') === c.join('\n')));

describe('import graph of src/', () => {
  const graph = buildImportGraph(SRC);

  it('reads a real graph (guards against a parser that finds nothing)', () => {
    expect(graph.files).toContain('store/index.ts');
    expect(graph.edges.some((e) => e.from === 'features.ts')).toBe(true);
    expect(graph.edges.some((e) => e.from === 'store/index.ts' && e.to === 'store/pglite.ts' && !e.typeOnly)).toBe(true);
  });

  it('has no cycle of value imports (runtime evaluation order)', () => {
    const cycles = notAllowed(findCycles(graph, 'value'));
    expect(cycles.map((c) => describeCycle(c, graph)), 'value-import cycles: move the shared piece into a module of its own').toEqual([]);
  });

  it('has no cycle at all, counting `import type` (the architecture rule)', () => {
    const cycles = notAllowed(findCycles(graph, 'any'));
    expect(cycles.map((c) => describeCycle(c, graph)), 'import cycles: move the shared piece into a module of its own').toEqual([]);
  });

  it('keeps no stale allowlist entry', () => {
    const found = findCycles(graph, 'any').map((c) => c.join('\n'));
    expect(ALLOWED_CYCLES.filter((a) => !found.includes(a.files.join('\n'))).map((a) => a.files)).toEqual([]);
  });
});

describe('the cycle finder itself', () => {
  const graphOf = (edges: Array<[string, string, boolean?]>): ImportGraph => ({
    files: [...new Set(edges.flatMap(([a, b]) => [a, b]))].sort(),
    edges: edges.map(([from, to, typeOnly]) => ({ from, to, typeOnly: typeOnly ?? false })),
  });

  it('finds a three-file value cycle and a self-import, and nothing in a chain', () => {
    const g = graphOf([['a', 'b'], ['b', 'c'], ['c', 'a'], ['d', 'd'], ['e', 'f']]);
    expect(findCycles(g, 'value')).toEqual([['a', 'b', 'c'], ['d']]);
  });

  it('counts a type-only edge for "any" but not for "value"', () => {
    const g = graphOf([['a', 'b'], ['b', 'a', true]]);
    expect(findCycles(g, 'value')).toEqual([]);
    expect(findCycles(g, 'any')).toEqual([['a', 'b']]);
  });

  it('reads static, re-export, dynamic and type imports, and ignores comments and strings', () => {
    const text = [
      "import { a } from './a.ts';",
      "import type { B } from './b.ts';",
      "import { type C } from './c.ts';",
      "export { d } from './d.ts';",
      "export type { E } from './e.ts';",
      "const f = await import('./f.ts');",
      "type G = import('./g.ts').G;",
      "// import { h } from './h.ts';",
      "const s = \"import { i } from './i.ts'\";",
      "import './side-effect.ts';",
    ].join('\n');
    expect(readSpecifiers('x.ts', text)).toEqual([
      { specifier: './a.ts', typeOnly: false },
      { specifier: './b.ts', typeOnly: true },
      { specifier: './c.ts', typeOnly: true },
      { specifier: './d.ts', typeOnly: false },
      { specifier: './e.ts', typeOnly: true },
      { specifier: './f.ts', typeOnly: false },
      { specifier: './g.ts', typeOnly: true },
      { specifier: './side-effect.ts', typeOnly: false },
    ]);
  });
});
