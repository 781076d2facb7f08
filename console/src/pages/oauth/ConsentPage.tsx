/**
 * The consent page of the MCP authorization server: GET /v1/oauth/authorize checked the request
 * and sent the browser here with its parameters. The member sees which application (by the name it
 * gave itself, and where it will be sent back) asks for which workspace's MCP tools, and approves or
 * denies; the API answers where to go next (the application's redirect URI with a code, or with
 * access_denied), and the page goes there.
 */
import { useQuery } from '@tanstack/react-query';
import { useMemo, useState } from 'react';
import { useSearchParams } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Notice, Page, RequireSession, Section } from '../../components/index.ts';

function hostOf(uri: string): string {
  try {
    const url = new URL(uri);
    return url.host === '' ? url.protocol : url.host;
  } catch {
    return uri;
  }
}

function Consent() {
  const [params] = useSearchParams();
  const query = useMemo(() => Object.fromEntries(params), [params]);
  const preview = useQuery({ queryKey: ['oauth-consent', params.toString()], queryFn: () => unwrap(api.POST('/v1/oauth/consent/preview', { body: { query } })), staleTime: Infinity });
  const [busy, setBusy] = useState<'approve' | 'deny' | null>(null);
  const [error, setError] = useState<unknown>(null);
  const decide = async (decision: 'approve' | 'deny') => {
    setBusy(decision);
    setError(null);
    try {
      const { redirectTo } = await unwrap(api.POST('/v1/oauth/consent', { body: { query, decision } }));
      window.location.assign(redirectTo);
    } catch (err) {
      setError(err);
      setBusy(null);
    }
  };
  if (preview.isPending) return <p className="loading" role="status">Loading…</p>;
  if (preview.error) return <ApiErrorNotice error={preview.error} title="This authorization request cannot be approved" />;
  const { client, org, workspace } = preview.data;
  return (
    <Section title={`Connect ${client.name}`}>
      <p>
        <strong>{client.name}</strong> asks to use the MCP tools of the workspace <strong>{workspace.name}</strong> in <strong>{org.name}</strong>, as approved by its admins.
      </p>
      <dl className="facts">
        <dt>Sent back to</dt>
        <dd>
          <code>{hostOf(client.redirectUri)}</code>
        </dd>
        <dt>Access</dt>
        <dd>
          <code>mcp:tools</code>: list and call the workspace&apos;s approved MCP tools, prompts and resources
        </dd>
      </dl>
      <Notice tone="warning" title="Approve only an application you started this from">
        <p>The name is what the application calls itself; Gatehouse has not verified it. Approving creates an API key named after it in this workspace: revoke that key under API keys to disconnect it.</p>
      </Notice>
      <ApiErrorNotice error={error} title="The decision was refused" />
      <div className="row">
        <Button variant="primary" busy={busy === 'approve'} disabled={busy !== null} onClick={() => void decide('approve')}>
          Approve
        </Button>
        <Button busy={busy === 'deny'} disabled={busy !== null} onClick={() => void decide('deny')}>
          Deny
        </Button>
      </div>
    </Section>
  );
}

export default function ConsentPage() {
  return <RequireSession>{() => <Page title="Authorize an MCP client">{<Consent />}</Page>}</RequireSession>;
}
