/**
 * The import graph of `src/**\/*.ts` (test files excluded), read with the TypeScript parser so
 * that comments and strings never count as imports. Used by the architecture tests.
 *
 * @example
 * const graph = buildImportGraph(srcDir);
 * const cycles = findCycles(graph, 'any');
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** One edge: `from` imports `to`; `typeOnly` when erased at runtime (`import type`, all-type named bindings). */
export interface ImportEdge {
  from: string;
  to: string;
  typeOnly: boolean;
}

/** Files (relative to the root, `/`-separated) and the edges between them. */
export interface ImportGraph {
  files: string[];
  edges: ImportEdge[];
}

const isSourceFile = (name: string): boolean =>
  name.endsWith('.ts') && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') && !name.endsWith('.shared-suite.ts');

function listSourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...listSourceFiles(full));
    else if (isSourceFile(entry.name)) out.push(full);
  }
  return out;
}

/** Resolves a relative specifier to a file that exists, or undefined (packages, assets). */
function resolveSpecifier(fromFile: string, specifier: string): string | undefined {
  if (!specifier.startsWith('.')) return undefined;
  const base = resolve(dirname(fromFile), specifier);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, join(base, 'index.ts')];
  return candidates.find((c) => c.endsWith('.ts') && existsSync(c));
}

function isTypeOnlyImport(node: ts.ImportDeclaration): boolean {
  const clause = node.importClause;
  if (!clause) return false; // side-effect import runs the module
  if (clause.isTypeOnly) return true;
  const bindings = clause.namedBindings;
  if (clause.name || !bindings || !ts.isNamedImports(bindings)) return false;
  return bindings.elements.length > 0 && bindings.elements.every((e) => e.isTypeOnly);
}

function isTypeOnlyExport(node: ts.ExportDeclaration): boolean {
  if (node.isTypeOnly) return true;
  const clause = node.exportClause;
  return !!clause && ts.isNamedExports(clause) && clause.elements.length > 0 && clause.elements.every((e) => e.isTypeOnly);
}

/** Every `import … from`, `export … from` and `import('literal')` in one file. */
export function readSpecifiers(fileName: string, text: string): Array<{ specifier: string; typeOnly: boolean }> {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true);
  const found: Array<{ specifier: string; typeOnly: boolean }> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyImport(node) });
    } else if (ts.isExportDeclaration(node) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      found.push({ specifier: node.moduleSpecifier.text, typeOnly: isTypeOnlyExport(node) });
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      const arg = node.arguments[0];
      if (arg && ts.isStringLiteralLike(arg)) found.push({ specifier: arg.text, typeOnly: false });
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument) && ts.isStringLiteral(node.argument.literal)) {
      found.push({ specifier: node.argument.literal.text, typeOnly: true }); // `import('x').T` in a type
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** Builds the graph of every non-test `.ts` file under `root`. */
export function buildImportGraph(root: string): ImportGraph {
  const absolute = listSourceFiles(root).sort();
  const rel = (f: string): string => relative(root, f).split('\\').join('/');
  const edges: ImportEdge[] = [];
  for (const file of absolute) {
    for (const { specifier, typeOnly } of readSpecifiers(file, readFileSync(file, 'utf8'))) {
      const target = resolveSpecifier(file, specifier);
      if (target) edges.push({ from: rel(file), to: rel(target), typeOnly });
    }
  }
  return { files: absolute.map(rel), edges };
}

/**
 * Strongly connected components with more than one file (or a file importing itself), by
 * Tarjan's algorithm. `kind: 'value'` keeps only edges that survive at runtime.
 */
export function findCycles(graph: ImportGraph, kind: 'value' | 'any'): string[][] {
  const next = new Map<string, Set<string>>(graph.files.map((f) => [f, new Set<string>()]));
  for (const e of graph.edges) if (kind === 'any' || !e.typeOnly) next.get(e.from)?.add(e.to);
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const cycles: string[][] = [];
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter += 1;
    stack.push(v);
    onStack.add(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop()!;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length > 1 || next.get(v)?.has(v)) cycles.push(component.sort());
  };
  for (const f of graph.files) if (!index.has(f)) strongConnect(f);
  return cycles.sort((a, b) => a[0]!.localeCompare(b[0]!));
}
