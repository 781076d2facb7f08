/**
 * Argument checks against an approved input schema (tools; prompt arguments too), compiled once
 * per definition hash and kept in a bounded cache. `$id` is dropped: one tenant's schema must
 * never be found by another's. A schema that cannot be compiled refuses every call (fail closed).
 */
import { AjvJsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/ajv';

const VALIDATOR_CACHE_MAX = 2000;

type Check = (input: unknown) => { valid: boolean; errorMessage?: string | undefined };

/** @example const v = createSchemaValidators(); v.check(hash, schema, args).valid */
export function createSchemaValidators() {
  let ajv = new AjvJsonSchemaValidator();
  const validators = new Map<string, Check>();

  function validatorOf(hash: string, inputSchema: unknown): Check {
    let v = validators.get(hash);
    if (!v) {
      if (validators.size >= VALIDATOR_CACHE_MAX) {
        validators.clear();
        ajv = new AjvJsonSchemaValidator();
      }
      const { $id: _ignored, ...schema } = inputSchema as Record<string, unknown>;
      try {
        v = ajv.getValidator(schema as never);
      } catch {
        v = () => ({ valid: false, errorMessage: 'the input schema cannot be compiled' });
      }
      validators.set(hash, v);
    }
    return v;
  }

  return {
    check: (hash: string, inputSchema: unknown, input: unknown) => validatorOf(hash, inputSchema)(input),
  };
}
