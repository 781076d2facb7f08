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
