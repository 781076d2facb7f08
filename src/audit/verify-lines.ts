/**
 * How the offline verifier (AUDIT-3) decodes a line of an export: the event lines the exporter
 * writes, recognised by their layout and parsed without the schema; any other line parsed and
 * checked against the format's schema (export-format.ts); the header line.
 */
import { EXPORT_FORMAT, exportLineSchema, headerLineSchema, type ExportLine } from './export-format.ts';

// The layout `encodeExportLine` gives an event line: canonical JSON sorts the members as
// event, index, type. Lines in this layout skip the general parse and schema.
const EVENT_HEAD = '{"event":';
const EVENT_INDEX = ',"index":';
const EVENT_TAIL = ',"type":"event"}';
const DIGITS = /^(?:0|[1-9][0-9]{0,15})$/;

/** An event line in the writer's layout: its index, its event, and the event's own text. */
export interface LaidOutEvent {
  index: number;
  event: Record<string, unknown>;
  text: string;
}

/** The event of a line in the writer's layout, or null for any other line (read the general way). */
export function laidOutEvent(text: string): LaidOutEvent | null {
  if (!text.startsWith(EVENT_HEAD) || !text.endsWith(EVENT_TAIL)) return null;
  const at = text.lastIndexOf(EVENT_INDEX);
  const digits = text.slice(at + EVENT_INDEX.length, text.length - EVENT_TAIL.length);
  if (at <= 0 || !DIGITS.test(digits)) return null;
  const eventText = text.slice(EVENT_HEAD.length, at);
  let event: unknown;
  try {
    event = JSON.parse(eventText);
  } catch {
    event = undefined;
  }
  const index = Number(digits);
  if (typeof event !== 'object' || event === null || Array.isArray(event) || !Number.isSafeInteger(index)) return null;
  return { index, event: event as Record<string, unknown>, text: eventText };
}

/** A line read the general way: the line, or why it is not JSON, or why it is not a valid line. */
export type ParsedLine = { line: ExportLine } | { notJson: string } | { invalid: string };

/** Parses and checks a line against the format's schema; `lineNo` is for the messages. */
export function parseLine(text: string, lineNo: number): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { notJson: `line ${lineNo} is not JSON: ${(err as Error).message}` };
  }
  const parsed = exportLineSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    return { invalid: `line ${lineNo} is not a valid export line${where}: ${issue?.message ?? 'invalid'}` };
  }
  return { line: parsed.data };
}

/** The log id of a header line, or why the first line is not one (a BAD_HEADER message). */
export function parseHeader(text: string): { log: string } | { bad: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { bad: 'the first line is not JSON: not an audit export' };
  }
  const parsed = headerLineSchema.safeParse(value);
  if (!parsed.success) {
    const format = (value as { format?: unknown } | null)?.format;
    const detail = typeof format === 'string' && format !== EXPORT_FORMAT ? `format ${JSON.stringify(format)} is not ${EXPORT_FORMAT}` : 'not a valid header line';
    return { bad: `the first line is ${detail}` };
  }
  return { log: parsed.data.log };
}

/** Whether a line is the event of this index, in any spelling (the missing one, turning up late). */
export function isEventOfIndex(text: string, index: number): boolean {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = null;
  }
  const line = value as { type?: unknown; index?: unknown } | null;
  return line?.type === 'event' && line.index === index;
}
