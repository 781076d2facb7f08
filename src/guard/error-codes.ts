/**
 * Error codes of the input guard. A refused AI call is rendered in the client's vendor format, so
 * the OpenAI and Anthropic SDKs raise their usual errors (400 BadRequestError, 403
 * PermissionDeniedError, 503 InternalServerError). Messages never say which rule fired.
 */
import type { ErrorCodeInfo } from '../server/error-codes.ts';

export const GUARD_ERROR_CODES = {
  GUARD_BLOCKED: {
    status: 400,
    message: 'The request was refused by the input guard of this workspace.',
    doc: 'The input guard found prompt injection, a jailbreak, system-prompt extraction, an exfiltration attempt or tool-call smuggling in the call\'s user or tool content, and the workspace\'s guard policy blocks such calls. The response does not say which rule fired (workspace admins see rule names in the audit log). Each block is a strike against the API key and the end user; repeated strikes block them for a while (GUARD_TEMPORARILY_BLOCKED). Not retried.',
  },
  GUARD_TEMPORARILY_BLOCKED: {
    status: 403,
    message: 'This API key or user is temporarily blocked after repeated refused requests.',
    doc: 'The API key (or the end user named by OpenAI `user` / Anthropic `metadata.user_id`) earned the workspace\'s strike threshold of guard blocks within its window, and is blocked until the time `Retry-After` gives in seconds; each further block doubles the duration up to the policy\'s maximum. A workspace admin can lift it: `DELETE /v1/orgs/:org/workspaces/:ws/guard-blocks/:subject`.',
  },
  GUARD_UNAVAILABLE: {
    status: 503,
    message: 'The input guard could not check this request; retry later.',
    doc: 'The guard could not read the workspace\'s policy or the caller\'s block state (database or kv unavailable), or could not record a strike. A failure to check is never treated as an allow: the call is refused.',
  },
  GUARD_SUBJECT_NOT_FOUND: {
    status: 404,
    message: 'This subject has no block or strikes in the workspace.',
    doc: 'Lifting a guard block: the subject (`key:<api key id>` or `user:<32 hex>`) is neither blocked nor has strikes in this workspace.',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type GuardErrorCode = keyof typeof GUARD_ERROR_CODES;
