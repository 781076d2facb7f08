/**
 * The MCP tool-call counter keeps its label cardinality bounded: a refused unknown name never
 * becomes a label, and past MAX_TOOL_SERIES series per node new tools count under "_other".
 */
import { describe, expect, it } from 'vitest';
import { createMcpMetrics, MAX_TOOL_SERIES } from '../../src/mcp/call-support.ts';

describe('MCP metrics', () => {
  it('attack: many distinct tool names cannot grow the counter past MAX_TOOL_SERIES series', async () => {
    const metrics = createMcpMetrics();
    for (let i = 0; i < MAX_TOOL_SERIES + 500; i++) metrics.countCall({ workspace: 'w', server: 's', tool: `t${i}`, outcome: 'ok' });
    metrics.countCall({ workspace: 'w', server: 's', tool: 't0', outcome: 'refused' });
    const { values } = await metrics.calls.get();
    const tools = new Set(values.map((v) => v.labels.tool));
    expect(tools.size).toBe(MAX_TOOL_SERIES + 1);
    expect(values.find((v) => v.labels.tool === '_other')?.value).toBe(500);
    expect(values.find((v) => v.labels.tool === 't0' && v.labels.outcome === 'refused')?.value).toBe(1);
  });
});
