/**
 * Removes vendor keys from text that came from (or talks about) an upstream before it reaches a
 * client or a log. Providers echo keys back in error bodies ("Incorrect API key provided: sk-…"),
 * sometimes whole and sometimes in part, so any run of at least `minFragment` characters that also
 * occurs in the key is replaced, not only the whole key.
 */

/** What replaces a key or a fragment of it. */
export const REDACTED = '[REDACTED]';

/** Shorter fragments are common substrings ("Bearer s", "api-key-") and would mangle honest text. */
const DEFAULT_MIN_FRAGMENT = 8;

/**
 * `text` with every occurrence of each secret, and of every fragment of a secret at least
 * `minFragment` characters long, replaced by `[REDACTED]`.
 * @example scrubSecrets('bad key sk-abcdefgh12345', ['sk-abcdefgh12345678']) // 'bad key [REDACTED]'
 */
export function scrubSecrets(text: string, secrets: readonly string[], minFragment = DEFAULT_MIN_FRAGMENT): string {
  const width = Math.max(1, Math.floor(minFragment));
  // Every window of `width` characters of every secret: a fragment of length >= width contains at
  // least one of them, so finding windows finds fragments.
  const windows = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < width) {
      if (secret.length > 0) windows.add(secret);
      continue;
    }
    for (let i = 0; i + width <= secret.length; i++) windows.add(secret.slice(i, i + width));
  }
  if (windows.size === 0 || text.length === 0) return text;

  // Mark every covered position, then replace each maximal covered run once.
  const covered = new Uint8Array(text.length);
  let found = false;
  for (const w of windows) {
    for (let at = text.indexOf(w); at !== -1; at = text.indexOf(w, at + 1)) {
      covered.fill(1, at, at + w.length);
      found = true;
    }
  }
  if (!found) return text;
  let out = '';
  let i = 0;
  while (i < text.length) {
    if (covered[i] === 1) {
      while (i < text.length && covered[i] === 1) i++;
      out += REDACTED;
    } else {
      const start = i;
      while (i < text.length && covered[i] !== 1) i++;
      out += text.slice(start, i);
    }
  }
  return out;
}

/** Lower-case letters and digits only: what survives spacing out, dashes, `%` escapes and case changes. */
function compact(text: string): string {
  return text.toLowerCase().replace(/[^a-z0-9]/g, '');
}

/** Base64 text of `bytes` that does not depend on what precedes or follows them, for each of the 3 alignments. */
function base64Cores(bytes: Buffer): string[] {
  const cores: string[] = [];
  for (let offset = 0; offset < 3; offset++) {
    const text = Buffer.concat([Buffer.alloc(offset), bytes]).toString('base64');
    // The first group mixes in the padding bytes, the last may mix in what follows.
    const core = text.slice(offset === 0 ? 0 : 4, text.length - 4);
    if (core.length >= 8) cores.push(core);
  }
  return cores;
}

/** The forms a key can be copied in that `compact` reduces to a searchable run. */
function encodedForms(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const reversed = [...secret].reverse().join('');
  // Hex covers `%XX` URL-encoding too once compacted; base64url differs from base64 only in `-_`
  // against `+/`, which compacting removes from both.
  return [secret, reversed, bytes.toString('hex'), ...base64Cores(bytes), ...base64Cores(Buffer.from(reversed, 'utf8'))];
}

/** Shortest compacted run of a key form that counts as a copy: long enough not to occur by chance in prose. */
const MIN_ENCODED_RUN = 12;

/**
 * True when `text` holds a copy of a secret in a form `scrubSecrets` does not see: spaced out or
 * with separators, in another case, reversed, hex, URL-encoded (`%XX`), base64 or base64url, whole or
 * a run of at least 12 significant characters. Used to withhold a vendor's message entirely: an
 * encoded key cannot be cut out reliably, so text that holds one is not passed on at all.
 * @example mentionsSecret('key: ' + Buffer.from(key).toString('base64'), [key]) // true
 */
export function mentionsSecret(text: string, secrets: readonly string[]): boolean {
  const haystack = compact(text);
  if (haystack.length < MIN_ENCODED_RUN) return false;
  for (const secret of secrets) {
    if (secret.length < DEFAULT_MIN_FRAGMENT) continue;
    for (const form of encodedForms(secret)) {
      const needle = compact(form);
      if (needle.length < MIN_ENCODED_RUN) continue;
      for (let i = 0; i + MIN_ENCODED_RUN <= needle.length; i++) {
        if (haystack.includes(needle.slice(i, i + MIN_ENCODED_RUN))) return true;
      }
    }
  }
  return false;
}
