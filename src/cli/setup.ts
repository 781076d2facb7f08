/**
 * `gatehouse setup`: creates the operator account on a running server with the one-time code
 * that `start` printed, through the server's own `POST /v1/setup` (so the same password rules
 * apply as for every account). The code and the password are read without echo from a terminal,
 * or as lines from stdin when it is not a terminal (for scripts): the code, then the email
 * (unless `--email` is given), then the password. Neither ever reaches argv, the shell history,
 * the output or the server's logs.
 */
import { createInterface } from 'node:readline/promises';
import { resolve } from 'node:path';
import type { LoadedConfig } from '../config/load.ts';
import { publicOriginOf } from '../config/schema.ts';
import { readLock } from '../store/data-dir.ts';

/** Exit 1: the server refused or could not be reached; exit 2: unusable input. */
export class SetupError extends Error {
  override name = 'SetupError';
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2) {
    super(message);
    this.exitCode = exitCode;
  }
}

export interface SetupOptions {
  email?: string;
  url?: string;
}

/** Reads one answer; `hidden` answers are not echoed. */
type Ask = (question: string, hidden: boolean) => Promise<string>;

/** The most stdin a script may pipe in: a code, an email and a password are far below it. */
const MAX_PIPED_BYTES = 64 * 1024;

/** Where the server listens: --url, else the URL the embedded data directory's lock announces, else the configured origin. */
export function setupUrlOf(loaded: LoadedConfig, url: string | undefined): string {
  if (url) return new URL(url).origin;
  const { config } = loaded;
  if (!config.storage.databaseUrl) {
    const holder = readLock(resolve(config.storage.dataDir));
    if (holder?.url) return new URL(holder.url).origin;
  }
  return publicOriginOf(config).replace('://0.0.0.0:', '://127.0.0.1:').replace('://[::]:', '://[::1]:');
}

/** Answers from piped stdin, one line each, in the order asked. */
async function pipedAnswers(stdin: NodeJS.ReadStream): Promise<Ask> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    size += buf.length;
    if (size > MAX_PIPED_BYTES) throw new SetupError('stdin is too large: expected the code, the email (without --email) and the password, one a line', 2);
    chunks.push(buf);
  }
  const lines = Buffer.concat(chunks).toString('utf8').split(/\r?\n/);
  let next = 0;
  return async (question) => {
    const line = lines[next++];
    if (line === undefined || line === '') throw new SetupError(`stdin ended before the answer to "${question.trim()}"`, 2);
    return line;
  };
}

/** Reads a line from the terminal in raw mode, echoing nothing; Ctrl-C aborts. */
function readHidden(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream, question: string): Promise<string> {
  stderr.write(question);
  return new Promise((resolvePromise, reject) => {
    let value = '';
    const finish = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolvePromise(value);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          finish();
          reject(new SetupError('aborted', 2));
          return;
        }
        if (ch === '\u007f' || ch === '\b') value = Array.from(value).slice(0, -1).join('');
        else if (ch === '\u001b') break; // an escape sequence (arrow keys): drop the rest of it
        else if (ch >= ' ') value += ch;
      }
    };
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

function terminalAnswers(stdin: NodeJS.ReadStream, stderr: NodeJS.WriteStream): Ask {
  return async (question, hidden) => {
    if (hidden) return readHidden(stdin, stderr, question);
    const rl = createInterface({ input: stdin, output: stderr });
    try {
      return await rl.question(question);
    } finally {
      rl.close();
    }
  };
}

interface SetupAnswers {
  token: string;
  email: string;
  password: string;
}

async function collect(ask: Ask, interactive: boolean, email: string | undefined): Promise<SetupAnswers> {
  const token = (await ask('One-time setup code (printed by `gatehouse start`, not echoed): ', true)).trim();
  const address = email ?? (await ask('Operator email: ', false)).trim();
  const password = await ask('Operator password (at least 15 characters, not echoed): ', true);
  if (interactive && (await ask('The same password again: ', true)) !== password) throw new SetupError('the two passwords differ; nothing was created', 2);
  return { token, email: address, password };
}

/** POSTs the answers to /v1/setup; resolves with the created operator's email. */
async function submit(origin: string, answers: SetupAnswers): Promise<string> {
  let res: Response;
  try {
    res = await fetch(new URL('/v1/setup', origin), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(answers),
      signal: AbortSignal.timeout(30_000),
    });
  } catch {
    throw new SetupError(`could not reach Gatehouse at ${origin}: start it with \`gatehouse start\` (or give its address with --url)`, 1);
  }
  const body = (await res.json().catch(() => ({}))) as { email?: string; error?: { code?: string; message?: string } };
  if (res.status === 201) return body.email ?? answers.email;
  const code = body.error?.code ?? `HTTP ${res.status}`;
  throw new SetupError(`the server refused the setup (${code}): ${body.error?.message ?? 'no reason given'}`, 1);
}

/**
 * Runs `gatehouse setup`. Prompts go to stderr; stdout gets one line on success.
 * @example await runSetup(loadConfig(), { email: 'you@example.com' }, console.log)
 */
export async function runSetup(loaded: LoadedConfig, options: SetupOptions, out: (line: string) => void): Promise<void> {
  const origin = setupUrlOf(loaded, options.url);
  const interactive = process.stdin.isTTY;
  const ask = interactive ? terminalAnswers(process.stdin, process.stderr) : await pipedAnswers(process.stdin);
  if (interactive) process.stderr.write(`Creating the operator account on ${origin}\n`);
  const answers = await collect(ask, interactive, options.email);
  const email = await submit(origin, answers);
  out(`operator account ${email} created on ${origin}; sign in with POST ${origin}/v1/auth/login`);
}
