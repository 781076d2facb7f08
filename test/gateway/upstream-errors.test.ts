import { describe, expect, it } from 'vitest';
import { mentionsSecret } from '../../src/gateway/scrub.ts';
import { NO_MESSAGE, rebuildVendorError, WITHHELD_MESSAGE } from '../../src/gateway/upstream-errors.ts';

const KEY = ['sk', 'unit', 'Zx8Cv7Bn6Mm5Lk4Jh3Gf2Ds1'].join('-');

describe('mentionsSecret', () => {
  const bytes = Buffer.from(KEY);
  const forms: Record<string, string> = {
    base64: bytes.toString('base64'),
    'base64 at an offset': Buffer.from(`key=${KEY}`).toString('base64'),
    base64url: bytes.toString('base64url'),
    hex: bytes.toString('hex'),
    'HEX upper case': bytes.toString('hex').toUpperCase(),
    reversed: [...KEY].reverse().join(''),
    'spaced out': [...KEY].join(' '),
    'dashed out': [...KEY].join('-'),
    'URL-encoded': [...bytes].map((b) => `%${b.toString(16)}`).join(''),
    'a 14-character run, spaced': [...KEY.slice(5, 19)].join(' '),
  };
  for (const [name, form] of Object.entries(forms)) {
    it(`finds the key as ${name} inside prose`, () => {
      expect(mentionsSecret(`The credential (${form}) was refused.`, [KEY])).toBe(true);
    });
  }

  it('leaves ordinary vendor messages alone', () => {
    for (const text of ['The model `gpt-4o-mini` does not exist or you do not have access to it.', 'max_tokens is too large: 100000. This model supports at most 4096 completion tokens.', 'Invalid value for messages[0].role: must be one of system, user, assistant.']) {
      expect(mentionsSecret(text, [KEY])).toBe(false);
    }
  });
});

describe('rebuildVendorError', () => {
  it('keeps type, code, param and a scrubbed message of an OpenAI error; drops every other field', () => {
    const text = JSON.stringify({ error: { message: `Bad key ${KEY}.`, type: 'invalid_request_error', param: 'model', code: 'model_not_found', extra: KEY }, id: 'x' });
    expect(rebuildVendorError('openai', 400, text, [KEY])).toEqual({ error: { message: 'Bad key [REDACTED].', type: 'invalid_request_error', param: 'model', code: 'model_not_found' } });
  });

  it('withholds a message holding an encoded key; drops identifiers that hold one', () => {
    const b64 = Buffer.from(KEY).toString('base64');
    const text = JSON.stringify({ error: { message: `see ${b64}`, type: 'invalid_request_error', param: b64.slice(0, 40), code: Buffer.from(KEY).toString('hex').slice(0, 60) } });
    expect(rebuildVendorError('openai', 400, text, [KEY])).toEqual({ error: { message: WITHHELD_MESSAGE, type: 'invalid_request_error', param: null, code: null } });
  });

  it('renders in the client\'s format whatever the vendor\'s: Ollama `{error: "..."}`, plain text, nothing', () => {
    expect(rebuildVendorError('anthropic', 404, JSON.stringify({ error: 'model "llama9" not found' }), [KEY], 'req-1')).toEqual({
      type: 'error',
      error: { type: 'not_found_error', message: 'model "llama9" not found' },
      request_id: 'req-1',
    });
    expect(rebuildVendorError('openai', 422, 'Unprocessable', [KEY]).error).toMatchObject({ message: 'Unprocessable', type: 'invalid_request_error' });
    expect(rebuildVendorError('openai', 400, '', [KEY]).error.message).toBe(NO_MESSAGE);
  });
});
