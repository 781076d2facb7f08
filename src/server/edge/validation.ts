/**
 * The one validator every route's zod schemas are compiled with (EDGE-4). Before the schema
 * runs, the raw input of each part (params, querystring, body, headers) is walked once for a
 * NUL character (U+0000) in any string or object key: PostgreSQL cannot store it in text or
 * jsonb and answers with an error, so it is refused here with 400 VALIDATION_FAILED naming the
 * field, for every route at once instead of a rule in each schema.
 */
import type { FastifySchemaCompiler } from 'fastify';
import { validatorCompiler as zodValidatorCompiler } from 'fastify-type-provider-zod';
import type { $ZodType } from 'zod/v4/core';
import { AppError } from '../errors.ts';

const NUL = '\u0000';

/** A key as shown in a message: NUL spelled out, bounded in length. */
function showKey(key: string): string {
  return key.slice(0, 64).replaceAll(NUL, '\\u0000');
}

/**
 * The path (`a.b.0`) of the first string value or object key holding U+0000, `''` when `value`
 * itself is such a string, or null when there is none. Depth is bounded by the body parser's
 * nesting limit (`server.maxJsonDepth`), so the recursion is too.
 */
export function findNul(value: unknown): string | null {
  if (typeof value === 'string') return value.includes(NUL) ? '' : null;
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const inner = findNul(value[i]);
      if (inner !== null) return inner === '' ? String(i) : `${i}.${inner}`;
    }
    return null;
  }
  // Bytes (a raw body) are not text fields. Query and params objects have prototypes of
  // their parsers' own, so any other object is walked by its own keys.
  if (ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return null;
  for (const [key, inner] of Object.entries(value as Record<string, unknown>)) {
    if (key.includes(NUL)) return showKey(key);
    const at = findNul(inner);
    if (at !== null) return at === '' ? showKey(key) : `${showKey(key)}.${at}`;
  }
  return null;
}

/** fastify-type-provider-zod's compiler, preceded by the NUL refusal. */
export const validatorCompiler: FastifySchemaCompiler<$ZodType> = (route) => {
  const validate = zodValidatorCompiler(route);
  const part = route.httpPart ?? 'body';
  return (data) => {
    const at = findNul(data);
    if (at !== null) {
      return { error: new AppError('VALIDATION_FAILED', `${part}${at ? '.' + at : ''}: must not contain a NUL character (U+0000)`) };
    }
    return validate(data);
  };
};
