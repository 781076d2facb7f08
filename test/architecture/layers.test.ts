/**
 * The layer rules of eslint.config.js (docs: ARCHITECTURE "Layers") cannot be removed or loosened
 * without this failing: fixtures placed as if in src/ are linted with the project's own config.
 * Attack: an infrastructure module (server/) reaching into a feature's internals, which would let
 * a feature's private state leak under every other feature and bring back import cycles.
 */
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const eslint = new ESLint({ cwd: ROOT });

const INFRASTRUCTURE_MESSAGE =
  "infrastructure never imports a feature: pass what you need in through the feature's create(ctx) or move the shared piece down into store/server";
const FEATURE_MESSAGE = 'a feature imports another feature only through its index.ts';

/** The no-restricted-imports messages eslint reports for `code` placed at `path` (relative to the repo). */
async function restrictedImports(path: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: `${ROOT}${path}` });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('layer rules (eslint no-restricted-imports)', () => {
  it('refuses a server module importing identity internals, with the message saying what to do', async () => {
    const messages = await restrictedImports(
      'src/server/layer-fixture.ts',
      "import { normalizeEmail } from '../identity/accounts.ts';\nexport const n = normalizeEmail;\n",
    );
    expect(messages).toHaveLength(1);
    expect(messages[0]).toContain(INFRASTRUCTURE_MESSAGE);
  });

  it('refuses infrastructure importing even a feature index.ts, a type only, or the composition root', async () => {
    const code = [
      "import type { MailQueue } from '../../identity/index.ts';",
      "import { features } from '../../features.ts';",
      "import { run } from '../../cli/main.ts';",
      'export type Q = MailQueue;',
      'export const f = [features, run];',
    ].join('\n');
    const messages = await restrictedImports('src/store/kv/layer-fixture.ts', code);
    expect(messages).toHaveLength(3);
    for (const m of messages) expect(m).toContain(INFRASTRUCTURE_MESSAGE);
  });

  it("refuses a feature importing another feature's internals, and allows its index.ts and infrastructure", async () => {
    const refused = await restrictedImports(
      'src/tenancy/layer-fixture.ts',
      "import { normalizeEmail } from '../identity/accounts.ts';\nexport const n = normalizeEmail;\n",
    );
    expect(refused).toHaveLength(1);
    expect(refused[0]).toContain(FEATURE_MESSAGE);

    const nested = await restrictedImports(
      'src/identity/routes/layer-fixture.ts',
      "import type { AuditLog } from '../../audit/log.ts';\nexport type A = AuditLog;\n",
    );
    expect(nested).toHaveLength(1);
    expect(nested[0]).toContain(FEATURE_MESSAGE);

    const allowed = await restrictedImports(
      'src/tenancy/layer-fixture.ts',
      [
        "import { normalizeEmail } from '../identity/index.ts';",
        "import { AppError } from '../server/errors.ts';",
        "import { parseHostEntry } from './invitations.ts';",
        'export const all = [normalizeEmail, AppError, parseHostEntry];',
      ].join('\n'),
    );
    expect(allowed).toEqual([]);
  });
  it("refuses the composition root (cli/, features.ts) importing a feature's internals, and allows its index.ts", async () => {
    const COMPOSITION_MESSAGE = 'the composition root (cli/, features.ts) uses a feature only through its index.ts';
    const refused = await restrictedImports('src/cli/layer-fixture.ts', "import { listOutbox } from '../identity/mailer.ts';\nimport { createSso } from '../federation/sso.ts';\nexport const l = [listOutbox, createSso];\n");
    expect(refused).toHaveLength(2);
    for (const m of refused) expect(m).toContain(COMPOSITION_MESSAGE);
    const root = await restrictedImports('src/features.ts', "import { createGateway } from './gateway/proxy.ts';\nexport const g = createGateway;\n");
    expect(root).toHaveLength(1);
    expect(root[0]).toContain(COMPOSITION_MESSAGE);
    const allowed = await restrictedImports('src/cli/layer-fixture.ts', "import { listOutbox } from '../identity/index.ts';\nimport { FEDERATION } from '../federation/index.ts';\nexport const l = [listOutbox, FEDERATION];\n");
    expect(allowed).toEqual([]);
  });
});
