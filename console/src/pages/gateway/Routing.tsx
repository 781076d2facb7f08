/**
 * The workspace's model routing: allowed models (empty: all) and aliases with fallback chains.
 * A member whose effective role here may not change it sees the values read-only, with no save.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { useWorkspaceRole } from '../../api/scope.ts';
import { ApiErrorNotice, Button, Field, Notice, RoleNote, Section, Table } from '../../components/index.ts';

/** "alias = model1, provider/model2" per line. */
function parseAliases(text: string) {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [name = '', targets = ''] = line.split('=');
      return {
        name: name.trim(),
        targets: targets
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean)
          .map((t) => (t.includes('/') ? { provider: t.slice(0, t.indexOf('/')), model: t.slice(t.indexOf('/') + 1) } : { model: t })),
      };
    });
}

export function Routing({ org, ws }: { org: string; ws: string }) {
  const role = useWorkspaceRole(org, ws);
  const manage = allows(role, 'providers.manage');
  const key = ['models', org, ws];
  const routing = useQuery({ queryKey: key, queryFn: () => unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}/models', { params: { path: { org, ws } } })) });
  const [allowed, setAllowed] = useState<string | null>(null);
  const [aliases, setAliases] = useState<string | null>(null);
  const current = routing.data;
  const allowedText = allowed ?? current?.allowedModels?.join(', ') ?? '';
  const aliasText = aliases ?? current?.aliases.map((a) => `${a.name} = ${a.targets.map((t) => (t.provider ? `${t.provider}/${t.model}` : t.model)).join(', ')}`).join('\n') ?? '';
  const save = useAction(
    () => {
      const list = allowedText.split(',').map((m) => m.trim()).filter(Boolean);
      return unwrap(api.PUT('/v1/orgs/{org}/workspaces/{ws}/models', { params: { path: { org, ws } }, body: { allowedModels: list.length ? list : null, aliases: parseAliases(aliasText) } }));
    },
    [key],
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (manage) save.mutate(undefined);
  };
  return (
    <Section title="Models and aliases">
      <ApiErrorNotice error={routing.error} />
      {current ? (
        <Table
          caption="Aliases"
          rows={current.aliases}
          rowKey={(a) => a.name}
          empty="No alias."
          columns={[
            { header: 'Alias', cell: (a) => a.name },
            { header: 'Tries, in order', cell: (a) => a.targets.map((t) => (t.provider ? `${t.provider}/${t.model}` : t.model)).join(' → ') },
          ]}
        />
      ) : null}
      <form className="form" onSubmit={submit} aria-label="Model routing">
        <Field label="Allowed models (comma-separated; empty allows every model of the providers)" readOnly={!manage} value={allowedText} onChange={(e) => setAllowed(e.target.value)} />
        <div className="field">
          <label htmlFor="aliases">Aliases, one per line: alias = model, provider/model</label>
          <textarea id="aliases" rows={4} readOnly={!manage} value={aliasText} onChange={(e) => setAliases(e.target.value)} />
        </div>
        {manage ? (
          <>
            <ApiErrorNotice error={save.error} title="Routing not saved" />
            {save.isSuccess ? <Notice tone="success">Routing saved; it applies to the next call on every node.</Notice> : null}
            <Button type="submit" variant="primary" busy={save.isPending}>
              Save routing
            </Button>
          </>
        ) : (
          <RoleNote role={role} permission="providers.manage" action="Changing the model routing" />
        )}
      </form>
    </Section>
  );
}
