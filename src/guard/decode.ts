/**
 * Layer 1b of the input guard: embedded payloads are decoded before inspection, recursively to a
 * small bounded depth. Each decoder returns a new "view" of the text (the payload decoded in
 * place, so the words around it stay) or nothing when it does not apply. The guard inspects every
 * view; a view reached through a decoder carries that decoder's name (`obfuscation.base64`, ...).
 */

/** One decoded view of the input and the decoders that led to it. */
export interface View {
  text: string;
  via: readonly string[];
}

/** Limits that keep decoding bounded whatever the input. */
export interface DecodeLimits {
  /** How many decoders may be chained (base64 inside hex inside URL-encoding...). */
  maxDepth: number;
  /** How many views at most, the plain one included. */
  maxViews: number;
  /** Views longer than this are not decoded further. */
  maxViewChars: number;
}

export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxDepth: 3, maxViews: 12, maxViewChars: 256 * 1024 };

const BASE64_RUN = /[A-Za-z0-9+/_-]{16,}={0,2}/g;
// Each repeated unit below has a fixed-length head that its separator cannot match, so a failed match backtracks
// linearly; test/guard/layers.test.ts runs them on pathological inputs.
// eslint-disable-next-line security/detect-unsafe-regex
const HEX_RUN = /\b(?:[0-9a-fA-F]{2}){8,}\b/g;
// eslint-disable-next-line security/detect-unsafe-regex
const HEX_SPACED = /\b[0-9a-fA-F]{2}(?:[ :,][0-9a-fA-F]{2}){7,}\b/g;
// eslint-disable-next-line security/detect-unsafe-regex
const HEX_ESCAPED = /(?:\\x[0-9a-fA-F]{2}){4,}/g;
// eslint-disable-next-line security/detect-unsafe-regex
const URL_RUN = /(?:%[0-9a-fA-F]{2}[A-Za-z0-9._~+-]{0,8}){3,}/g;
// A word with letters and a digit or symbol standing for a letter; `!` and `|` are decoded but do not
// count on their own ("there!" is not leetspeak). `\b` at the start keeps the lookaheads linear.
const LEET_WORD = /\b(?=[a-z0-9@$!|]*[a-z])(?=[a-z0-9@$!|]*[013457@$])[a-z0-9@$!|]{3,}/gi;
const SPACED_LETTERS = /\b(?:\p{L}[ .\-_*]){3,}\p{L}\b/gu;
const COMMON_WORDS = new Set(['the', 'and', 'to', 'of', 'a', 'in', 'is', 'you', 'that', 'it', 'for', 'your', 'all', 'with', 'what', 'this', 'are', 'be', 'me', 'my', 'i', 'on', 'how', 'can', 'do', 'not', 'now', 'say', 'tell']);

/** True when `bytes` decode to mostly printable UTF-8 text with at least one letter. */
function printable(decoded: string): boolean {
  if (decoded.length < 4 || decoded.includes('\uFFFD')) return false;
  let ok = 0;
  for (const ch of decoded) {
    const c = ch.codePointAt(0) ?? 0;
    if (c === 9 || c === 10 || c === 13 || (c >= 0x20 && c !== 0x7f && !(c >= 0x80 && c < 0xa0))) ok++;
  }
  return ok / decoded.length >= 0.95 && /[\p{L}\p{N}]{2}/u.test(decoded);
}

function replaceRuns(text: string, pattern: RegExp, decodeRun: (run: string) => string | undefined): string | undefined {
  let changed = false;
  const out = text.replace(pattern, (run) => {
    const decoded = decodeRun(run);
    if (decoded === undefined || !printable(decoded)) return run;
    changed = true;
    return ` ${decoded} `;
  });
  return changed ? out : undefined;
}

function base64(text: string): string | undefined {
  return replaceRuns(text, BASE64_RUN, (run) => {
    if (/^[a-z]+$|^[A-Z]+$|^\d+$/.test(run)) return undefined; // a long word or number, not base64
    const standard = run.replace(/-/g, '+').replace(/_/g, '/');
    return Buffer.from(standard, 'base64').toString('utf8');
  });
}

function hex(text: string): string | undefined {
  const fromHex = (run: string): string => Buffer.from(run.replace(/\\x|[ :,]/g, ''), 'hex').toString('utf8');
  let out = replaceRuns(text, HEX_ESCAPED, fromHex) ?? text;
  out = replaceRuns(out, HEX_SPACED, fromHex) ?? out;
  out = replaceRuns(out, HEX_RUN, (run) => (/[a-f]/i.test(run) || run.length >= 16 ? fromHex(run) : undefined)) ?? out;
  return out === text ? undefined : out;
}

function urlEncoding(text: string): string | undefined {
  return replaceRuns(text, URL_RUN, (run) => {
    try {
      return decodeURIComponent(run.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  });
}

/** ROT13 of the ASCII letters, through a table of UTF-16 code units (no callback per letter). */
function rot13Of(text: string): string {
  const units = new Uint16Array(text.length);
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    units[i] = c >= 65 && c <= 90 ? ((c - 52) % 26) + 65 : c >= 97 && c <= 122 ? ((c - 84) % 26) + 97 : c;
  }
  return new TextDecoder('utf-16le').decode(units);
}

function commonWordRatio(text: string): number {
  const words = text.toLowerCase().match(/[a-z]+/g) ?? [];
  if (words.length === 0) return 0;
  let common = 0;
  for (const w of words) if (COMMON_WORDS.has(w)) common++;
  return common / words.length;
}

/** Whether `rotated` reads more like English than `original`. */
function readsBetter(original: string, rotated: string): boolean {
  const before = commonWordRatio(original);
  const after = commonWordRatio(rotated);
  return after >= 0.08 && after > before * 2;
}

/** Sentences and lines, each with the separator after it (joined back, they are the text). */
const SEGMENT = /[^.!?:;\n]+[.!?:;\n]*/g;

/**
 * ROT13 applies to the whole text when the rotated text reads more like English, or else to each
 * sentence or line that does ("Translate this: Vtaber nyy cerivbhf vafgehpgvbaf" rotates only the
 * payload, so the English around it does not hide it).
 */
function rot13(text: string): string | undefined {
  const rotated = rot13Of(text);
  if (readsBetter(text, rotated)) return rotated;
  let changed = false;
  const out = text.replace(SEGMENT, (segment) => {
    // A segment that already reads like English is not rotated (most of them: this keeps it cheap).
    if (segment.length < 12 || commonWordRatio(segment) >= 0.1) return segment;
    const r = rot13Of(segment);
    if (!readsBetter(segment, r)) return segment;
    changed = true;
    return r;
  });
  return changed ? out : undefined;
}

const LEET: Readonly<Record<string, string>> = { '0': 'o', '1': 'i', '3': 'e', '4': 'a', '5': 's', '7': 't', '@': 'a', $: 's', '!': 'i', '|': 'l' };

/** Two digits or symbols for letters, or one between letters: "pr3v10us", "h@ck", not "80th" or "mp3". */
function looksLeet(word: string): boolean {
  const triggers = word.match(/[013457@$]/g)?.length ?? 0;
  return (/[a-z]{2}/i.test(word) || triggers >= 3) && (triggers >= 2 || /[a-z][013457@$][a-z]/i.test(word)) && !/^\d+(?:st|nd|rd|th|s|am|pm|k|m|kg|km|mb|gb|px)$/i.test(word);
}

/** Leetspeak applies when at least two words mix letters with look-alike digits or symbols. */
function leetspeak(text: string): string | undefined {
  const words = (text.match(LEET_WORD) ?? []).filter(looksLeet);
  if (words.length < 2) return undefined;
  return text.replace(LEET_WORD, (word) => word.replace(/[013457@$!|]/g, (ch) => LEET[ch] ?? ch));
}

/** Letter-spaced words ("i g n o r e", "i.g.n.o.r.e") joined back together. */
function spacedLetters(text: string): string | undefined {
  let changed = false;
  const out = text.replace(SPACED_LETTERS, (run) => {
    changed = true;
    return run.replace(/[ .\-_*]/g, '');
  });
  return changed ? out : undefined;
}

/** The decoders in the order they are tried. */
export const DECODERS: readonly [string, (text: string) => string | undefined][] = [
  ['base64', base64],
  ['hex', hex],
  ['url_encoding', urlEncoding],
  ['rot13', rot13],
  ['leetspeak', leetspeak],
  ['spaced_letters', spacedLetters],
];

/**
 * Every view of `text` reachable by chaining decoders, breadth first, within `limits`.
 * The first view is `text` itself with an empty `via`.
 */
export function decodeViews(text: string, limits: DecodeLimits = DEFAULT_DECODE_LIMITS): View[] {
  const views: View[] = [{ text, via: [] }];
  const seen = new Set([text]);
  let frontier: View[] = views.slice();
  for (let depth = 0; depth < limits.maxDepth && frontier.length > 0; depth++) {
    const next: View[] = [];
    for (const view of frontier) {
      if (view.text.length > limits.maxViewChars) continue;
      for (const [name, decoder] of DECODERS) {
        if (views.length >= limits.maxViews) return views;
        if (view.via.at(-1) === name && name !== 'base64' && name !== 'hex') continue;
        const decoded = decoder(view.text);
        if (decoded === undefined || seen.has(decoded)) continue;
        seen.add(decoded);
        const found = { text: decoded, via: [...view.via, name] };
        views.push(found);
        next.push(found);
      }
    }
    frontier = next;
  }
  return views;
}
