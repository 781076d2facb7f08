/** Error codes of client-token minting (GW-6), in the shape of src/server/error-codes.ts. */
import type { ErrorCodeInfo } from '../server/error-codes.ts';

export const TOKENS_ERROR_CODES = {
  TOKEN_SCOPE_NOT_HELD: {
    status: 403,
    message: 'The API key does not hold these scopes.',
    doc: 'A client token may carry only AI scopes (`ai:chat`, `ai:embeddings`, `ai:models`) that its parent API key holds; the key holds none of them, or not the ones asked for.',
  },
  TOKEN_PARENT_INACTIVE: {
    status: 409,
    message: 'The API key is revoked or expired.',
    doc: 'A member asked to mint a client token from an API key of the workspace that is revoked or past its expiry. Create a new key.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;
