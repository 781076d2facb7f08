/**
 * Which parts of an AI call the guard inspects, per wire format: user- and tool-supplied content
 * (OpenAI `user`, `tool` and `function` messages; Anthropic `user` turns, tool results included;
 * embeddings input), and the system prompt only when the policy says so. Each part is a slot that
 * redaction can rewrite in place.
 */

/** One inspected text and how to write a redacted version back into the body. */
export interface ContentSlot {
  text: string;
  write: (text: string) => void;
}

type Json = Record<string, unknown>;

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Slots of a content field: a string, or an array of parts with `text` (and nested tool-result content). */
function contentSlots(holder: Json, field: string, out: ContentSlot[], depth = 0): void {
  const value = holder[field];
  if (typeof value === 'string') {
    out.push({ text: value, write: (text) => void (holder[field] = text) });
    return;
  }
  if (!Array.isArray(value) || depth > 2) return;
  for (const part of value) {
    if (!isObject(part)) continue;
    if (typeof part.text === 'string') out.push({ text: part.text, write: (text) => void (part.text = text) });
    // Anthropic tool_result blocks carry their own content (string or blocks).
    if (part.type === 'tool_result' && part.content !== undefined) contentSlots(part, 'content', out, depth + 1);
  }
}

const OPENAI_INSPECTED = new Set(['user', 'tool', 'function']);
const OPENAI_SYSTEM = new Set(['system', 'developer']);

/**
 * The slots of `body` the guard inspects.
 * @example slotsOf('openai', 'chat', { messages: [{ role: 'user', content: 'hi' }] }, false) // one slot, 'hi'
 */
export function slotsOf(format: 'openai' | 'anthropic', operation: 'chat' | 'embeddings' | 'messages', body: Json, inspectSystem: boolean): ContentSlot[] {
  const out: ContentSlot[] = [];
  if (operation === 'embeddings') {
    const input = body.input;
    if (typeof input === 'string') out.push({ text: input, write: (text) => void (body.input = text) });
    else if (Array.isArray(input)) {
      input.forEach((item, i) => {
        if (typeof item === 'string') out.push({ text: item, write: (text) => void (input[i] = text) });
      });
    }
    return out;
  }
  if (format === 'anthropic' && inspectSystem && body.system !== undefined) contentSlots(body, 'system', out);
  const messages = Array.isArray(body.messages) ? body.messages : [];
  for (const message of messages) {
    if (!isObject(message) || typeof message.role !== 'string') continue;
    const inspected = format === 'anthropic' ? message.role === 'user' : OPENAI_INSPECTED.has(message.role) || (inspectSystem && OPENAI_SYSTEM.has(message.role));
    if (inspected) contentSlots(message, 'content', out);
  }
  return out;
}

/** The end-user id the client sent, when it sent one: OpenAI `user`, Anthropic `metadata.user_id`. */
export function endUserOf(body: Json): string | undefined {
  const id = typeof body.user === 'string' ? body.user : isObject(body.metadata) && typeof body.metadata.user_id === 'string' ? body.metadata.user_id : undefined;
  return id && id.length > 0 && id.length <= 512 ? id : undefined;
}
