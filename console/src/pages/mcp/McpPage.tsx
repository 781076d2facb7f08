/**
 * The MCP gateway of the current workspace: its endpoint for MCP clients, its upstream servers,
 * and the review of their tools and prompts. Reading and changing all need `mcp.manage`; the API
 * decides: a member without it sees its refusal and no change control.
 */
import { useQuery } from '@tanstack/react-query';
import { api, unwrap } from '../../api/client.ts';
import { useEffectiveScope } from '../../api/scope.ts';
import { CopyButton, Page, RequireSession, ScopePicker, Section } from '../../components/index.ts';
import { Review } from './Review.tsx';
import { Servers } from './Servers.tsx';
import '../../styles/pages.css';

function Endpoint({ ws }: { ws: string }) {
  const url = `${window.location.origin}/v1/mcp/${ws}`;
  return (
    <Section title="Endpoint">
      <p>Give MCP clients this URL (Streamable HTTP). They see the approved tools and prompts of the servers below as <code>server__name</code>.</p>
      <p className="secret" data-testid="mcp-endpoint">{url}</p>
      <CopyButton value={url} label="Copy endpoint URL" />
      <p className="muted endpoint-note">
        A client connects with an API key holding the scope <code>mcp:tools</code> (<code>Authorization: Bearer</code>), or through OAuth: it is sent to a consent page where a member who may manage this workspace's API keys approves it.
      </p>
    </Section>
  );
}

function Workspace({ org, ws }: { org: string; ws: string }) {
  const servers = useQuery({
    queryKey: ['mcp', org, ws, 'servers'],
    queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/mcp/servers', { params: { path: { org, ws } } }))).servers,
  });
  return (
    <>
      <Endpoint ws={ws} />
      <Servers org={org} ws={ws} list={servers} />
      <Review org={org} ws={ws} canManage={servers.isSuccess} />
    </>
  );
}

export default function McpPage() {
  const scope = useEffectiveScope();
  return (
    <RequireSession>
      {() => (
        <Page title="MCP" intro="The workspace's MCP servers, the review of their tools and prompts, and the endpoint MCP clients connect to.">
          <ScopePicker workspace />
          {scope.org && scope.ws ? <Workspace org={scope.org} ws={scope.ws} /> : null}
        </Page>
      )}
    </RequireSession>
  );
}
