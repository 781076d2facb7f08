/**
 * Server-sent events: an incremental parser that keeps each block's raw text, so a relay can pass
 * the provider's bytes on unchanged and drop or inspect whole blocks (src/gateway/proxy-relay.ts).
 * Wire-format neutral: the adapters (src/gateway/adapters/) read the blocks' meaning.
 */

export interface SseBlock {
  /** The `event:` field, or null. */
  event: string | null;
  /** The `data:` lines joined with '\n' (empty when there were none). */
  data: string;
  hasData: boolean;
  /** The exact text of the block, line endings included, for relaying it unchanged. */
  raw: string;
  /** True for a block cut in pieces because it exceeded the size limit; its fields are empty. */
  oversized: boolean;
}

export interface SseParserOptions {
  /** A block longer than this (characters) is passed on in pieces and not parsed. Default 1 MiB. */
  maxBlockChars?: number;
}

/** An incremental SSE parser: feed it text as it arrives, in chunks cut anywhere. */
export interface SseParser {
  /** Parses `text` and returns the blocks it completed (raw text of oversized blocks as it comes). */
  feed(text: string): SseBlock[];
  /** Ends the stream: returns what remains (an unterminated block is returned raw, unparsed). */
  end(): SseBlock[];
}

const LINE_END = /[\r\n]/g;

/**
 * An SSE parser after the WHATWG rules: lines end in CRLF, LF or CR (also when CR and LF arrive in
 * different chunks), lines starting with ':' are comments, `data` lines accumulate, a blank line
 * ends a block. Each block keeps its raw text so a relay can forward or drop whole blocks.
 * @example const p = createSseParser(); for (const b of p.feed(text)) if (b.hasData) use(b.data)
 */
export function createSseParser(options: SseParserOptions = {}): SseParser {
  const maxBlockChars = options.maxBlockChars ?? 1024 * 1024;
  let pending = ''; // text after the last complete line
  let raw = ''; // raw text of the current block's complete lines
  let event: string | null = null;
  let data: string[] = [];
  let oversized = false; // inside a block that outgrew the limit: pass raw on, parse nothing
  let oversizedLineHasText = false; // an oversized block's current line already had text

  const reset = (): void => {
    raw = '';
    event = null;
    data = [];
  };
  const piece = (text: string): SseBlock => ({ event: null, data: '', hasData: false, raw: text, oversized: true });

  const takeLine = (line: string, rawLine: string, out: SseBlock[]): void => {
    if (oversized) {
      const blank = line === '' && !oversizedLineHasText;
      oversizedLineHasText = false;
      out.push(piece(rawLine));
      if (blank) {
        oversized = false;
        reset();
      }
      return;
    }
    raw += rawLine;
    if (line === '') {
      out.push({ event, data: data.join('\n'), hasData: data.length > 0, raw, oversized: false });
      reset();
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') data.push(value);
    else if (field === 'event') event = value;
  };

  return {
    feed(text: string): SseBlock[] {
      const out: SseBlock[] = [];
      const buffer = pending + text;
      let start = 0;
      if (!buffer.includes('\r')) {
        // The usual stream, LF line ends only: plain searches instead of the pattern below.
        for (let at = buffer.indexOf('\n'); at !== -1; at = buffer.indexOf('\n', start)) {
          takeLine(buffer.slice(start, at), buffer.slice(start, at + 1), out);
          start = at + 1;
        }
      }
      LINE_END.lastIndex = start;
      for (let m = LINE_END.exec(buffer); m !== null; m = LINE_END.exec(buffer)) {
        const at = m.index;
        if (buffer[at] === '\r') {
          // A CR at the very end may be the first half of a CRLF: wait for the next chunk.
          if (at === buffer.length - 1) break;
          const end = buffer[at + 1] === '\n' ? at + 2 : at + 1;
          takeLine(buffer.slice(start, at), buffer.slice(start, end), out);
          start = end;
          LINE_END.lastIndex = end;
        } else {
          takeLine(buffer.slice(start, at), buffer.slice(start, at + 1), out);
          start = at + 1;
        }
      }
      pending = buffer.slice(start);
      if (!oversized && raw.length + pending.length > maxBlockChars) {
        // Too big to hold: hand on what we have and stream the rest of this block through.
        oversized = true;
        out.push(piece(raw));
        reset();
      }
      if (oversized) {
        const keep = pending.endsWith('\r') ? 1 : 0; // a trailing CR still decides where the line ends
        const now = pending.slice(0, pending.length - keep);
        if (now.length > 0) {
          out.push(piece(now));
          oversizedLineHasText = true;
        }
        pending = pending.slice(pending.length - keep);
      }
      return out.filter((b) => b.raw.length > 0);
    },
    end(): SseBlock[] {
      const out: SseBlock[] = [];
      if (pending.endsWith('\r')) {
        takeLine(pending.slice(0, -1), pending, out);
        pending = '';
      }
      const rest = raw + pending;
      if (rest.length > 0) out.push(piece(rest));
      pending = '';
      oversized = false;
      reset();
      return out;
    },
  };
}

