/**
 * The MCP gateway's typed error: an `AppError` with one of the MCP codes (registered on import,
 * so it can be built before the module is created).
 */
import { AppError, registerErrorCodes } from '../server/errors.ts';
import { MCP_ERROR_CODES, type McpErrorCode } from './error-codes.ts';

registerErrorCodes(MCP_ERROR_CODES);

/** @example throw new McpGatewayError('MCP_TOOL_NOT_ALLOWED') */
export class McpGatewayError extends AppError {
  override name = 'McpGatewayError';
  declare readonly code: McpErrorCode;

  constructor(code: McpErrorCode, message?: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}
