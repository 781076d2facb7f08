/**
 * A provider's 4xx answer (other than 401, 403 and 429, which become Gatehouse errors) rebuilt for
 * the client from an allowlist of fields, in the client's wire format.
 *
 * Passing the vendor's body through with the key cut out was not enough: a vendor may echo the key
 * encoded (base64, hex, reversed, spaced out, URL-encoded) or put it in any field, and a body in
 * another vendor's shape would reach an SDK that cannot read it. So only these fields are kept:
 * - `type`, `code`, `param`: kept when they are short identifiers that hold no copy of a key;
 * - `message`: vendor keys and their fragments cut out (`scrubSecrets`); if a copy of a key in any
 *   other form remains (`mentionsSecret`), the whole message is withheld and a fixed one stands in.
 * Everything else in the vendor's body (ids, nested details, echoed input) is dropped.
 */
import { mentionsSecret, scrubSecrets } from './scrub.ts';
import { adapterFor, type VendorErrorBody, type WireFormat } from './adapters/index.ts';

const IDENTIFIER = /^[A-Za-z0-9_.:-]{1,64}$/;
const MAX_MESSAGE_CHARS = 1_000;
// C0 and C1 controls other than tab and line breaks: nothing a client should render.
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const CONTROL_CHARS = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]/g;

/** The message that stands in when the vendor's held a copy of a key, or had none. */
export const WITHHELD_MESSAGE = 'The AI provider refused the request; its message was withheld because it quoted a credential.';
export const NO_MESSAGE = 'The AI provider refused the request.';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The fields a vendor error may carry, from OpenAI's, Anthropic's and common compatible shapes. */
interface VendorFields {
  type?: unknown;
  code?: unknown;
  param?: unknown;
  message?: unknown;
}

function fieldsOf(text: string): VendorFields {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    // Not JSON: the text itself is the only message there is.
    return { message: text };
  }
  if (!isRecord(parsed)) return {};
  const error = parsed.error;
  // OpenAI `{error: {...}}`, Anthropic `{type: 'error', error: {...}}`.
  if (isRecord(error)) return { type: error.type, code: error.code, param: error.param, message: error.message };
  // Ollama and others `{error: "..."}`, FastAPI `{detail: "..."}`, or a bare `{message, code}`.
  return { code: parsed.code, message: typeof error === 'string' ? error : (parsed.message ?? parsed.detail) };
}

function safeIdentifier(value: unknown, secrets: readonly string[]): string | null {
  const text = typeof value === 'number' && Number.isInteger(value) ? String(value) : value;
  if (typeof text !== 'string' || !IDENTIFIER.test(text)) return null;
  return mentionsSecret(text, secrets) || scrubSecrets(text, secrets) !== text ? null : text;
}

function safeMessage(value: unknown, secrets: readonly string[]): string {
  if (typeof value !== 'string' || value.trim() === '') return NO_MESSAGE;
  const scrubbed = scrubSecrets(value.slice(0, MAX_MESSAGE_CHARS * 4), secrets).replace(CONTROL_CHARS, '');
  if (mentionsSecret(scrubbed, secrets)) return WITHHELD_MESSAGE;
  return scrubbed.length > MAX_MESSAGE_CHARS ? `${scrubbed.slice(0, MAX_MESSAGE_CHARS)}…` : scrubbed;
}

/**
 * The client's error body for a provider's 4xx answer `text` with status `status`.
 * @example const body = rebuildVendorError('openai', 400, upstreamText, [vendorKey], request.id)
 */
export function rebuildVendorError(format: WireFormat, status: number, text: string, secrets: readonly string[], requestId?: string): VendorErrorBody {
  const fields = fieldsOf(text);
  const message = safeMessage(fields.message, secrets);
  const type = safeIdentifier(fields.type, secrets);
  const safe = { message, type, param: safeIdentifier(fields.param, secrets), code: safeIdentifier(fields.code, secrets) };
  return adapterFor(format).upstreamErrorBody(status, safe, requestId);
}
