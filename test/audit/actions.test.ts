/**
 * Audit actions are declared by the module that records them (AUDIT-1; `auditActions` in
 * src/server/module.ts), collected by the module runtime and handed to the audit log, which refuses
 * any other action before anything is sealed or written. A scan of src/ stands in for the
 * compile-time list the actions used to be: every action literal recorded anywhere is declared.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUDIT_ACTIONS } from '../../src/features.ts';
import { PLATFORM_TENANT_ID } from '../../src/keyring/keyring.ts';
import { createTestApp, type TestApp } from '../support/app.ts';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') && !entry.name.endsWith('audit-actions.ts') && entry.name !== 'actions.ts' ? [full] : [];
  });
}

/** String literals with a dot in an expression, through conditionals (`a ? 'x.y' : 'x.z'`). */
function dottedLiterals(node: ts.Expression): string[] {
  if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) return node.text.includes('.') ? [node.text] : [];
  if (ts.isConditionalExpression(node)) return [...dottedLiterals(node.whenTrue), ...dottedLiterals(node.whenFalse)];
  if (ts.isParenthesizedExpression(node)) return dottedLiterals(node.expression);
  return [];
}

/**
 * Every action literal src/ records (`action: '...'` properties and identity's `note('...', ...)`),
 * and every string literal of src/ (outside the declarations).
 */
function scanSource(): { recorded: Map<string, string>; literals: Set<string> } {
  const found = new Map<string, string>();
  const literals = new Set<string>();
  for (const file of sourceFiles(SRC)) {
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
    const visit = (node: ts.Node): void => {
      if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) literals.add(node.text);
      if (ts.isPropertyAssignment(node) && node.name.getText(sf) === 'action') for (const a of dottedLiterals(node.initializer)) found.set(a, file);
      if (ts.isCallExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'note' && node.arguments[0]) {
        for (const a of dottedLiterals(node.arguments[0])) found.set(a, file);
      }
      ts.forEachChild(node, visit);
    };
    visit(sf);
  }
  return { recorded: found, literals };
}

describe('audit actions declared by their modules', () => {
  it('every action recorded in src/ is declared by a module, and every declared action is used', () => {
    const { recorded, literals } = scanSource();
    expect(recorded.size).toBeGreaterThan(80);
    const undeclared = [...recorded].filter(([a]) => !AUDIT_ACTIONS.includes(a)).map(([a, file]) => `${a} (${file.slice(SRC.length)})`);
    expect(undeclared).toEqual([]);
    expect(AUDIT_ACTIONS.filter((a) => !literals.has(a))).toEqual([]);
  });

  describe('on a node', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await createTestApp();
    });
    afterAll(async () => t?.close());

    it('attack: recording an action no module declares is refused before anything is written', async () => {
      const before = await t.node.audit.size(PLATFORM_TENANT_ID);
      await expect(t.node.audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'made.up' })).rejects.toThrow('unknown audit action "made.up": declare it in its module\'s auditActions');
      await expect(t.node.audit.prepare({ tenantId: PLATFORM_TENANT_ID, action: 'auth.login' })).rejects.toThrow('unknown audit action "auth.login"');
      expect(await t.node.audit.size(PLATFORM_TENANT_ID)).toEqual(before);
      // A declared action from any module is accepted.
      await t.node.audit.record({ tenantId: PLATFORM_TENANT_ID, action: 'backup.drill_marker', data: { n: 0 } });
      expect((await t.node.audit.size(PLATFORM_TENANT_ID)).size).toBe(before.size + 1);
    });

    it('the log accepts exactly the actions the listed modules declare', () => {
      expect([...t.node.audit.actions].sort()).toEqual([...AUDIT_ACTIONS].sort());
    });
  });
});
