/**
 * The console's typed API client is generated from the node's OpenAPI document
 * (scripts/gen-console-api.ts, run by `npm run docs`) and committed, so a fresh clone builds the
 * console offline. This fails when the committed types differ from what the API now declares.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { CONSOLE_API_TYPES, renderConsoleApiTypes } from '../../scripts/gen-console-api.ts';

describe('console API types', () => {
  it('console/src/api/schema.d.ts matches the OpenAPI document (run `npm run docs` after changing a route)', async () => {
    const committed = readFileSync(CONSOLE_API_TYPES, 'utf8');
    const fresh = await renderConsoleApiTypes();
    expect(committed === fresh, 'console/src/api/schema.d.ts is stale: run `npm run docs`').toBe(true);
  });
});
