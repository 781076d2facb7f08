/**
 * Error codes of the MCP gateway (GW-5), in the shape of src/server/error-codes.ts. Management
 * routes answer them as HTTP errors; on the MCP endpoint, refusals of one JSON-RPC request carry
 * the code in the JSON-RPC error's `data.code` (the HTTP status stays 200, as MCP clients expect),
 * and tool failures become tool results with `isError: true` naming the code.
 */
import type { ErrorCodeInfo } from '../server/error-codes.ts';

export const MCP_ERROR_CODES = {
  MCP_LIMIT_REACHED: { status: 409, message: 'The workspace has as many MCP servers as it may have.', doc: 'A workspace may register at most `mcp.maxServersPerWorkspace` upstream MCP servers. Delete one first.' },
  MCP_SERVER_URL_NOT_ALLOWED: {
    status: 400,
    message: 'The MCP server URL cannot be reached from this gateway.',
    doc: 'The server URL uses a scheme, host or port that `mcp.upstream` does not allow (plain http needs `mcp.upstream.allowInsecureHttp`; hosts and ports must be on `mcp.upstream.allowedHosts`). An operator must allow it, or fix the URL.',
  },
  MCP_UPSTREAM_UNREACHABLE: {
    status: 502,
    message: 'The MCP server could not be reached.',
    doc: 'The connection to the upstream MCP server failed, its address is private or reserved (and not in `mcp.upstream.allowedCidrs`), or it is not on the allowlist any more. Nothing was sent to it.',
  },
  MCP_UPSTREAM_ERROR: {
    status: 502,
    message: 'The MCP server failed to answer.',
    doc: 'The upstream MCP server answered with an HTTP or protocol error (its credentials were refused, it does not speak MCP over Streamable HTTP, or it failed). Its answer is not passed on.',
  },
  MCP_UPSTREAM_TIMEOUT: { status: 504, message: 'The MCP server did not answer in time.', doc: 'The upstream MCP server took longer than `mcp.callTimeoutMs`.' },
  MCP_UPSTREAM_TOO_MANY_TOOLS: { status: 502, message: 'The MCP server lists too many tools.', doc: 'The upstream listed more than `mcp.maxToolsPerServer` tools; nothing was recorded.' },
  MCP_TOOL_NOT_ALLOWED: {
    status: 403,
    message: 'This tool is not available to this key.',
    doc: 'The tool does not exist, is not approved for the workspace (new and changed tools wait for an admin\'s review), its server is disabled, or the key\'s own tool allowlist does not list it. On the MCP endpoint: a JSON-RPC error (-32602) with `data.code`.',
  },
  MCP_PROMPT_NOT_ALLOWED: {
    status: 403,
    message: 'This prompt is not available to this key.',
    doc: 'The prompt does not exist, is not approved for the workspace (new and changed prompts wait for an admin\'s review, like tools), its server is disabled, or the key\'s own allowlist does not list it. On the MCP endpoint: a JSON-RPC error (-32602) with `data.code`.',
  },
  MCP_RESOURCE_NOT_ALLOWED: {
    status: 403,
    message: 'This resource is not available to this key.',
    doc: 'The URI is not `gatehouse://<server>/<uri>` of a server whose resources an admin opted in (`resources: true`), the server is disabled, or the key\'s own allowlist does not name `<server>:resources`. On the MCP endpoint: a JSON-RPC error (-32602) with `data.code`.',
  },
  MCP_ARGUMENTS_INVALID: {
    status: 400,
    message: 'The tool arguments do not match the tool\'s input schema.',
    doc: 'The arguments were checked against the approved input schema of the tool and refused before anything reached the upstream. On the MCP endpoint: a JSON-RPC error (-32602) with `data.code`; the message names the first problem.',
  },
  MCP_RESULT_BLOCKED: {
    status: 403,
    message: 'The upstream result was withheld by the workspace\'s guard.',
    doc: 'A result inspector (the input guard) judged the tool\'s output, the prompt\'s messages or the resource\'s contents dangerous (e.g. a prompt injection) and the server\'s result policy is `enforce`. For a tool the client gets a tool error instead of the output; for a prompt or a resource, a JSON-RPC error with `data.code`. The message names what was withheld (the tool result, the prompt, the resource). Audited.',
  },
  MCP_RESULT_TOO_LARGE: {
    status: 502,
    message: 'The upstream result is too large.',
    doc: 'The tool result, the prompt\'s messages or the resource\'s contents are larger than `mcp.maxResultBytes`; they are not passed on. The message names what was withheld.',
  },
  MCP_GUARD_UNAVAILABLE: {
    status: 503,
    message: 'The upstream result could not be checked.',
    doc: 'A result inspector failed; the tool result, prompt or resource is withheld (fail closed) even under the `monitor` policy, and the message names which. Retry later.',
  },
  MCP_SERVER_CHANGED: { status: 409, message: 'The MCP server was changed at the same time; retry.', doc: 'Two requests replaced the same MCP server at once; nothing of this one was stored. Retry.' },
} satisfies Record<string, ErrorCodeInfo>;

export type McpErrorCode = keyof typeof MCP_ERROR_CODES;
