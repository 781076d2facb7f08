/**
 * The `mcp` section of the configuration (GW-5): which upstream MCP servers may be reached, and
 * the bounds of a tool call. It lives in src/config (the config schema imports no feature); the
 * MCP feature reads it as `config.mcp`.
 */
import { z } from 'zod';
import { checkCidr, checkHostPattern } from './gateway.ts';
import { opt } from './option-meta.ts';

const hostPattern = z.string().superRefine((value, ctx) => {
  const problem = checkHostPattern(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});
const cidr = z.string().superRefine((value, ctx) => {
  const problem = checkCidr(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const mcpSection = z
  .strictObject({
    upstream: z
      .strictObject({
        allowedHosts: opt(z.array(hostPattern).max(1000).default([]), {
          doc: 'Hosts (with ports, as in gateway.upstream.allowedHosts) that a workspace\'s upstream MCP server URLs may name. Empty: no MCP server can be reached until an operator lists its host. Checked before DNS; the resolved address is checked too.',
        }),
        allowedCidrs: opt(z.array(cidr).max(1000).default([]), {
          doc: 'CIDRs allowed for MCP servers although private, loopback or reserved (e.g. an in-house tool server on 10.0.7.0/24). Empty: MCP servers must resolve to public addresses only.',
        }),
        allowInsecureHttp: opt(z.boolean().default(false), {
          doc: 'Allow plain `http:` MCP server URLs. Their credentials then cross the network in clear.',
        }),
      })
      .prefault({}),
    callTimeoutMs: opt(z.number().int().min(100).max(600_000).default(60_000), {
      doc: 'Longest upstream MCP request (a tool call, a tool listing), connect included. Past it the client gets a tool error MCP_UPSTREAM_TIMEOUT.',
    }),
    maxServersPerWorkspace: opt(z.number().int().min(1).max(1000).default(50), { doc: 'Most upstream MCP servers one workspace may register.' }),
    maxToolsPerServer: opt(z.number().int().min(1).max(10_000).default(500), {
      doc: 'Most tools recorded from one upstream MCP server; a server listing more is refused at sync (MCP_UPSTREAM_TOO_MANY_TOOLS).',
    }),
    maxResultBytes: opt(z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024), {
      doc: 'Largest tool result (as JSON) passed to an MCP client; a larger one becomes the tool error MCP_RESULT_TOO_LARGE.',
    }),
  })
  .prefault({});

export type McpConfig = z.infer<typeof mcpSection>;
