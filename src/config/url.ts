/**
 * The one schema for URL fields, in the config and in request bodies alike.
 *
 * Why not `z.url()` alone: zod's format check and the WHATWG parser disagree at the edges, and a
 * refinement after `z.url()` still runs when the format check failed (zod 4 keeps going), so a
 * refinement that calls `new URL()` threw on `https://exa mple.com` and the request became a 500.
 * Here every check parses inside a try, so a URL the parser refuses is a validation issue (400 on
 * a route, a named error at config load), never an exception.
 *
 * It also refuses what the parser would silently change (tabs, newlines and other characters
 * outside printable ASCII are stripped or re-encoded by `new URL`, so the URL used would not be the
 * URL checked) and malformed percent escapes (`%zz`), which some consumers decode and others keep.
 */
import { z } from 'zod';

export interface HttpUrlOptions {
  /** Also accept `http:`. Default true (whether plain http may be used is decided where it is called). */
  allowHttp?: boolean;
  /** Refuse user info, a query and a fragment: for base URLs that are shown back or extended. Default false. */
  bare?: boolean;
  /** Longest accepted text. Default 2048. */
  maxLength?: number;
}

const PRINTABLE_ASCII = /^[\x21-\x7e]+$/;
const BAD_PERCENT_ESCAPE = /%(?![0-9a-fA-F]{2})/;

/**
 * Why `text` is not an acceptable URL, or null when it is. Never throws.
 * @example urlProblem('https://[::1', {}) // 'not a URL the parser accepts'
 */
export function urlProblem(text: string, options: HttpUrlOptions = {}): string | null {
  if (!PRINTABLE_ASCII.test(text)) return 'a URL may hold only printable ASCII, without spaces';
  if (BAD_PERCENT_ESCAPE.test(text)) return 'a "%" must start a two-digit hex escape';
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'not a URL the parser accepts';
  }
  const httpAllowed = options.allowHttp ?? true;
  if (!(url.protocol === 'https:' || (httpAllowed && url.protocol === 'http:'))) return httpAllowed ? 'an http or https URL' : 'an https URL';
  if (url.hostname === '') return 'a URL with a host';
  if (options.bare === true && (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || text.includes('?') || text.includes('#'))) {
    return 'a URL without credentials, query or fragment';
  }
  return null;
}

/**
 * A string schema for an http(s) URL that every other part of Gatehouse can parse with `new URL`
 * without a try. Keeps `format: uri` in the OpenAPI document.
 * @example const baseUrl = httpUrlSchema({ bare: true })
 */
export function httpUrlSchema(options: HttpUrlOptions = {}) {
  const maxLength = options.maxLength ?? 2048;
  // Not `z.url()`: it trims the text and strips tabs and newlines before any refinement sees it,
  // so the value checked and kept would not be the value sent. `format: uri` keeps the OpenAPI type.
  return z
    .string()
    .max(maxLength)
    .meta({ format: 'uri' })
    .superRefine((value, ctx) => {
      const problem = urlProblem(value, options);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    });
}
