import { describe, expect, it } from 'vitest';
import { httpUrlSchema, urlProblem } from '../../src/config/url.ts';

describe('httpUrlSchema', () => {
  it('refuses, without throwing, what the URL parser refuses or would rewrite', () => {
    const schema = httpUrlSchema({ bare: true });
    for (const bad of ['https://exa mple.com', 'https://example.com:70000', 'https://[::1', 'https://ex%zzample.com', 'https://example.com/%zz', 'https://exa\nmple.com', 'https://exämple.com', 'ftp://example.com', 'https://u:p@example.com', 'https://example.com/?', 'https://example.com/#x']) {
      expect(() => schema.parse(bad), bad).toThrow();
      expect(schema.safeParse(bad).success, bad).toBe(false);
    }
  });

  it('accepts ordinary http(s) URLs, and http only when allowed', () => {
    const schema = httpUrlSchema({ bare: true });
    for (const good of ['https://api.openai.com', 'http://127.0.0.1:11434/v1', 'https://[::1]:8443/', 'https://example.com/a%20b']) expect(schema.parse(good)).toBe(good);
    expect(urlProblem('http://example.com', { allowHttp: false })).toBe('an https URL');
    expect(urlProblem('https://example.com/?q=1')).toBeNull();
  });
});
