/**
 * `gatehouse outbox [id]`: reads the mail outbox (messages written when no SMTP server is
 * configured, see src/identity/mailer.ts). Without an id, a table of the messages, newest first;
 * with an id, the whole message: headers, a blank line, then the text.
 *
 * Control characters other than tab are shown escaped (`\x1b`) so a message cannot drive the
 * terminal. Reads only; works while a server is running (no data-directory lock).
 */
import { listOutbox, readOutbox, type OutboxEntry } from '../identity/index.ts';

const MAX_SUBJECT_COLUMN = 60;

/** Escapes C0/C1 control characters (tab kept) so terminal escape sequences are printed, not run. */
function printable(value: string): string {
  // eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
  return value.replace(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function clip(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

function table(entries: readonly OutboxEntry[]): string[] {
  const rows = [
    ['ID', 'TIME', 'KIND', 'TO', 'SUBJECT'],
    ...entries.map((e) => [e.id, printable(e.createdAt), e.kind, printable(e.to), clip(printable(e.subject), MAX_SUBJECT_COLUMN)]),
  ];
  const widths = [0, 1, 2, 3].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) =>
    r
      .map((cell, i) => (i < widths.length ? cell.padEnd(widths[i] ?? 0) : cell))
      .join('  ')
      .trimEnd(),
  );
}

export async function runOutbox(outboxDir: string, options: { id?: string }, out: (line: string) => void): Promise<void> {
  if (options.id !== undefined) {
    const e = await readOutbox(outboxDir, options.id);
    out(`Id: ${e.id}`);
    out(`Date: ${printable(e.createdAt)}`);
    out(`Kind: ${e.kind}`);
    out(`To: ${printable(e.to)}`);
    out(`Subject: ${printable(e.subject)}`);
    out('');
    for (const line of e.text.replace(/\r\n/g, '\n').split('\n')) out(printable(line));
    return;
  }
  const entries = await listOutbox(outboxDir);
  if (entries.length === 0) {
    out(`outbox is empty (${outboxDir})`);
    return;
  }
  for (const line of table(entries)) out(line);
  out(`${entries.length} message${entries.length === 1 ? '' : 's'} in ${outboxDir}`);
}
