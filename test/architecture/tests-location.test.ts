/**
 * Tests live in test/, not in src/ (issue 17: "shared test suites out of src/"): src/ holds what a
 * node runs, test/ mirrors its folders (unit tests beside the integration tests of the same
 * feature), and the suites every adapter runs are in test/store/suites/.
 */
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

/** Folders whose tests have not moved yet, with why. */
const NOT_YET: ReadonlyArray<{ dir: string; why: string }> = [];

const isTestFile = (name: string): boolean => name.endsWith('.test.ts') || name.endsWith('.shared-suite.ts');

function testFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return testFiles(full);
    return isTestFile(entry.name) ? [relative(SRC, full).split('\\').join('/')] : [];
  });
}

describe('where tests live', () => {
  it('src/ holds no test file and no shared suite', () => {
    const found = testFiles(SRC).filter((file) => !NOT_YET.some((n) => file.startsWith(n.dir)));
    expect(found, 'move these to test/, mirroring their folder under src/ (shared suites to test/store/suites/)').toEqual([]);
  });
});
