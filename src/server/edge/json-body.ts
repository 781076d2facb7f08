/**
 * The only body parser: JSON, with prototype-poisoning refusal and a nesting limit checked
 * on the raw text before parsing, so a deeply nested body costs one linear scan.
 */
import type { FastifyInstance } from 'fastify';
import sjson from 'secure-json-parse';
import { AppError } from '../errors.ts';

/** Deepest nesting of [ and { outside strings; stops counting once past `limit`. */
export function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
      continue;
    }
    if (c === 34) inString = true;
    else if (c === 91 || c === 123) {
      if (++depth > limit) return true;
    } else if (c === 93 || c === 125) depth--;
  }
  return false;
}

export function registerJsonBodyParser(app: FastifyInstance, maxDepth: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string;
    if (text.length === 0) {
      done(new AppError('EMPTY_JSON_BODY'), undefined);
      return;
    }
    if (jsonDepthExceeds(text, maxDepth)) {
      done(new AppError('BODY_TOO_DEEP', `The JSON body nests deeper than ${maxDepth} levels.`), undefined);
      return;
    }
    try {
      done(null, sjson.parse(text, undefined, { protoAction: 'error', constructorAction: 'error' }));
    } catch (err) {
      const forbidden = err instanceof SyntaxError && /prototype|constructor/i.test(err.message);
      done(new AppError('INVALID_JSON', forbidden ? 'The body sets a forbidden property (__proto__ or constructor.prototype).' : undefined), undefined);
    }
  });
}
