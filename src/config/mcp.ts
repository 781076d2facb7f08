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

const stdioServer = z.strictObject({
  command: z.string().min(1).max(1000),
  args: z.array(z.string().max(4000)).max(100).default([]),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,100}$/), z.string().max(8000)).default({}),
  cwd: z.string().min(1).max(1000).optional(),
  workspaces: z.array(z.uuid()).max(1000),
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
    stdioServers: opt(z.record(z.string().regex(/^[a-z0-9](?:[a-z0-9]|-(?!-)){0,31}$/), stdioServer).default({}), {
      doc: 'Local MCP servers Gatehouse may launch as child processes (stdio transport), by name: `{ command, args, env, cwd, workspaces }`. Only an operator defines them (the API can only refer to one, as the server URL `stdio:<name>`, from a workspace listed in its `workspaces`). The child gets only `env` and a minimal safe environment (PATH, HOME, USER...), never Gatehouse\'s own; one process per registered server per node, started on first use. Their tools, prompts and resources go through the same review, guard and audit as HTTP servers.',
    }),
    callTimeoutMs: opt(z.number().int().min(100).max(600_000).default(60_000), {
      doc: 'Longest upstream MCP request (a tool call, a tool listing), connect included. Past it the client gets a tool error MCP_UPSTREAM_TIMEOUT.',
    }),
    catalogCacheSeconds: opt(z.number().int().min(0).max(600).default(30), {
      doc: 'How long a node keeps what a key may use on the MCP endpoint (its approved tools and prompts, opted-in resource servers) before reading the registry again. Every registry change (server, sync, review, key allowlist) drops the workspace\'s entries on every node at once through kv; a node that may have missed such a message does not use the cache. 0: read the registry on every request.',
    }),
    maxServersPerWorkspace: opt(z.number().int().min(1).max(1000).default(50), { doc: 'Most upstream MCP servers one workspace may register.' }),
    maxToolsPerServer: opt(z.number().int().min(1).max(10_000).default(500), {
      doc: 'Most tools recorded from one upstream MCP server; a server listing more is refused at sync (MCP_UPSTREAM_TOO_MANY_TOOLS).',
    }),
    maxResultBytes: opt(z.number().int().min(1024).max(64 * 1024 * 1024).default(4 * 1024 * 1024), {
      doc: 'Largest tool result, prompt or resource (as JSON) passed to an MCP client; a larger one is withheld with MCP_RESULT_TOO_LARGE (for a tool, as a tool error).',
    }),
    oauth: z
      .strictObject({
        accessTokenTtlSeconds: opt(z.number().int().min(60).max(3600).default(600), {
          doc: 'Lifetime of an OAuth access token for the MCP endpoint (bound to one workspace\'s endpoint as its audience). Revoking the grant or the key refuses it at once on every node whatever its lifetime.',
        }),
        refreshTokenTtlSeconds: opt(z.number().int().min(3600).max(90 * 86_400).default(30 * 86_400), {
          doc: 'Lifetime of an MCP OAuth refresh token. Each is single-use: a refresh returns a new one, and presenting a used one again revokes the whole grant.',
        }),
        codeTtlSeconds: opt(z.number().int().min(10).max(600).default(60), {
          doc: 'Lifetime of an authorization code of the MCP OAuth flow; each is single-use (a second redemption revokes the grant).',
        }),
      })
      .prefault({}),
  })
  .prefault({});

export type McpConfig = z.infer<typeof mcpSection>;
