/** Export lines: written as canonical JSON with a newline, read back through their schemas. */
import { describe, expect, it } from 'vitest';
import { generateSigningKey } from '../../src/crypto/signing.ts';
import { encodeExportLine, exportLineSchema } from '../../src/audit/export-format.ts';

const key = generateSigningKey();

describe('export lines', () => {
  it('are canonical JSON ending in a newline, and parse back', () => {
    const lines = [
      encodeExportLine({ type: 'header', format: 'gatehouse-audit-export/1', log: 'tenant-acme', exportedAt: '2025-03-01T09:00:00.000Z' }),
      encodeExportLine({ type: 'key', kid: key.kid, jwk: key.publicJwk }),
      encodeExportLine({ type: 'event', index: 0, event: { seq: 0, action: 'login', time: '2025-03-01T09:00:00.000Z' } }),
      encodeExportLine({ type: 'end', events: 1, checkpoints: 0 }),
    ];
    expect(lines[2]).toBe('{"event":{"action":"login","seq":0,"time":"2025-03-01T09:00:00.000Z"},"index":0,"type":"event"}\n');
    for (const line of lines) {
      expect(line.endsWith('\n') && !line.slice(0, -1).includes('\n')).toBe(true);
      expect(exportLineSchema.safeParse(JSON.parse(line)).success).toBe(true);
    }
  });

  it('refuse unknown members, unknown types and another format', () => {
    const bad = [
      { type: 'end', events: 1, checkpoints: 0, note: 'x' },
      { type: 'comment', text: 'x' },
      { type: 'header', format: 'gatehouse-audit-export/2', log: 'l', exportedAt: '2025-03-01T09:00:00.000Z' },
      { type: 'event', index: -1, event: { seq: -1 } },
      { type: 'event', index: 0, event: [0] },
      { type: 'key', kid: key.kid, jwk: { ...key.publicJwk, d: 'secret' } },
    ];
    for (const line of bad) expect(exportLineSchema.safeParse(line).success, JSON.stringify(line)).toBe(false);
  });

  it('refuse to encode a value JSON cannot carry', () => {
    expect(() => encodeExportLine({ type: 'event', index: 0, event: { seq: 0, amount: Number.NaN } })).toThrow(TypeError);
  });
});
