/**
 * How a JavaScript value becomes a statement parameter: node-postgres's own rules (`prepareValue`:
 * Date with its offset, arrays as PostgreSQL array literals, objects as JSON, Buffers as binary,
 * undefined as NULL). The PostgreSQL adapter sends parameters through node-postgres; the embedded
 * adapter uses the same function, so both take exactly the same values.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
// pg's lib/utils.js has exported prepareValue since pg 2; it ships no type declaration for it.
const utils = require('pg/lib/utils.js') as { prepareValue: (value: unknown) => string | Buffer | null };

export const prepareValue: (value: unknown) => string | Buffer | null = utils.prepareValue;
