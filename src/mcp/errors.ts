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

/** What an upstream returned that Gatehouse may withhold: a tool's result, a prompt's messages, a resource's contents. */
export type McpResultKind = 'tool' | 'prompt' | 'resource';

const RESULT_NAMES: Record<McpResultKind, string> = { tool: 'tool result', prompt: 'prompt', resource: 'resource' };
const WITHHELD = {
  MCP_RESULT_BLOCKED: (what: string) => `The ${what} was withheld by the workspace's guard.`,
  MCP_RESULT_TOO_LARGE: (what: string) => `The ${what} is too large.`,
  MCP_GUARD_UNAVAILABLE: (what: string) => `The ${what} could not be checked.`,
} satisfies Partial<Record<McpErrorCode, (what: string) => string>>;

/**
 * A withheld upstream result, its message naming what was withheld (the tool result, the prompt,
 * the resource): the codes are shared by tools/call, prompts/get and resources/read.
 * @example throw resultWithheld('MCP_RESULT_BLOCKED', 'prompt') // "The prompt was withheld by the workspace's guard."
 */
export function resultWithheld(code: keyof typeof WITHHELD, kind: McpResultKind): McpGatewayError {
  return new McpGatewayError(code, WITHHELD[code](RESULT_NAMES[kind]));
}
