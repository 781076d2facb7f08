/**
 * Layer 1a of the input guard: Unicode normalisation before any rule or model looks at the text.
 *
 * NFKC folds compatibility forms (fullwidth letters, mathematical alphanumerics, ligatures);
 * invisible characters (zero-width, soft hyphen, word joiners) and bidi controls are removed;
 * Unicode tag characters (U+E0000–U+E007F, "ASCII smuggling") are decoded back to ASCII; letters
 * of other scripts that look like Latin letters (Cyrillic "а", Greek "ο") are folded to Latin.
 * Each trick that was present is reported as an `obfuscation.*` signal.
 */

/** Zero-width and other invisible format characters, removed before inspection. */
// Combining marks (U+034F, Mongolian and Unicode variation selectors) are listed as escapes on purpose: each is removed on its own.
// eslint-disable-next-line no-misleading-character-class
const INVISIBLE = /[\u00AD\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u2060-\u2064\u206A-\u206F\u3164\uFEFF\uFFA0]|\u034F|[\u180B-\u180D]|\u180F|[\uFE00-\uFE0F]/gu;
/** Bidirectional embedding, override and isolate controls. */
const BIDI = /[\u202A-\u202E\u2066-\u2069]/gu;
/** Unicode tag characters: invisible, but an LLM reads them as the ASCII they shadow. */
// eslint-disable-next-line security/detect-unsafe-regex -- one character class repeated: linear
const TAGS = /[\u{E0000}-\u{E007F}]+/gu;

/** Letters of Cyrillic, Greek and other scripts that render like a Latin letter. */
const HOMOGLYPHS: Readonly<Record<string, string>> = {
  // Cyrillic lower case
  а: 'a', в: 'b', е: 'e', ё: 'e', к: 'k', м: 'm', н: 'h', о: 'o', р: 'p', с: 'c', т: 't', у: 'y', х: 'x',
  і: 'i', ї: 'i', ј: 'j', ѕ: 's', ԁ: 'd', ӏ: 'l', ԛ: 'q', ԝ: 'w', һ: 'h', ց: 'g', ɡ: 'g', ı: 'i', ʏ: 'y',
  // Cyrillic upper case
  А: 'A', В: 'B', Е: 'E', Ё: 'E', К: 'K', М: 'M', Н: 'H', О: 'O', Р: 'P', С: 'C', Т: 'T', У: 'Y', Х: 'X',
  І: 'I', Ї: 'I', Ј: 'J', Ѕ: 'S', Ԁ: 'D', Ӏ: 'I', Ԛ: 'Q', Ԝ: 'W', Һ: 'H',
  // Greek
  α: 'a', β: 'b', ε: 'e', ι: 'i', κ: 'k', ν: 'v', ο: 'o', ρ: 'p', τ: 't', υ: 'u', χ: 'x', γ: 'y', ω: 'w',
  Α: 'A', Β: 'B', Ε: 'E', Ζ: 'Z', Η: 'H', Ι: 'I', Κ: 'K', Μ: 'M', Ν: 'N', Ο: 'O', Ρ: 'P', Τ: 'T', Υ: 'Y', Χ: 'X',
  // Latin look-alikes outside ASCII that NFKC leaves alone
  ℮: 'e', ƅ: 'b', ɑ: 'a', ɩ: 'i', ɪ: 'i', ʀ: 'r', ꜱ: 's', ᴀ: 'a', ᴄ: 'c', ᴅ: 'd', ᴇ: 'e', ᴋ: 'k', ᴍ: 'm', ᴏ: 'o', ᴘ: 'p', ᴛ: 't', ᴜ: 'u', ᴠ: 'v', ᴡ: 'w', ᴢ: 'z',
};
// Built from the constant table above, never from input.
// eslint-disable-next-line security/detect-non-literal-regexp
const HOMOGLYPH_CHARS = new RegExp(`[${Object.keys(HOMOGLYPHS).join('')}]`, 'gu');
const HOMOGLYPH_SET = new Set(Object.keys(HOMOGLYPHS));
/** Words (runs of letters, cut at 64) in which a mix of scripts is looked for. */
const WORDS = /\p{L}{2,64}/gu;

/** True when some word mixes ASCII Latin letters with a look-alike of another script. */
function hasMixedWord(text: string): boolean {
  for (const [word] of text.matchAll(WORDS)) {
    let latin = false;
    let lookalike = false;
    for (const ch of word) {
      if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')) latin = true;
      else if (HOMOGLYPH_SET.has(ch)) lookalike = true;
      if (latin && lookalike) return true;
    }
  }
  return false;
}

/** The result of normalising one text. */
export interface Normalized {
  /** NFKC, invisible/bidi characters removed, tags decoded, homoglyphs folded. */
  text: string;
  /** `obfuscation.*` names of the tricks that were present. */
  signals: string[];
}

/** Decodes Unicode tag characters to the ASCII they shadow (U+E0041 → "A"); others are dropped. */
function decodeTags(text: string): string {
  return text.replace(TAGS, (run) => {
    let decoded = '';
    for (const ch of run) {
      const code = (ch.codePointAt(0) ?? 0) - 0xe0000;
      if (code >= 0x20 && code < 0x7f) decoded += String.fromCharCode(code);
    }
    return decoded ? ` ${decoded} ` : '';
  });
}

/**
 * Normalises `input` for inspection. Never used to rewrite what is sent upstream.
 * @example normalize('ign\u200Bore аll').text // 'ignore all'
 */
export function normalize(input: string): Normalized {
  const signals: string[] = [];
  let text = input;
  if (TAGS.test(text)) {
    signals.push('obfuscation.tag_characters');
    text = decodeTags(text);
  }
  TAGS.lastIndex = 0;
  text = text.normalize('NFKC');
  const withoutInvisible = text.replace(INVISIBLE, '');
  if (withoutInvisible.length !== text.length) signals.push('obfuscation.invisible');
  const withoutBidi = withoutInvisible.replace(BIDI, '');
  if (withoutBidi.length !== withoutInvisible.length) signals.push('obfuscation.bidi');
  text = withoutBidi;
  if (hasMixedWord(text)) signals.push('obfuscation.homoglyph');
  text = text.replace(HOMOGLYPH_CHARS, (ch) => HOMOGLYPHS[ch] ?? ch);
  return { text, signals };
}
