import { Link } from 'react-router';
import { setScope, setWorkspace, useEffectiveScope, useOrgs, useWorkspaces } from '../api/scope.ts';
import { SelectField } from './Field.tsx';

/**
 * Chooses the org (and, with `workspace`, the workspace) a page works in; the choice is shared by
 * every page. Says where to create one when there is none.
 */
export function ScopePicker({ workspace = false }: { workspace?: boolean }) {
  const scope = useEffectiveScope();
  const orgs = useOrgs();
  const workspaces = useWorkspaces(scope.org);
  if (orgs.isPending) return <p className="loading" role="status">Loading…</p>;
  if (!orgs.data?.length) {
    return (
      <p className="scope-empty">
        You are not in an organisation yet: <Link to="/orgs">create one</Link>.
      </p>
    );
  }
  return (
    <div className="scope-picker">
      <SelectField
        label="Organisation"
        value={scope.org}
        onChange={(e) => setScope(e.target.value)}
        options={orgs.data.map((o) => ({ value: o.id, label: `${o.name} (${o.role})` }))}
      />
      {workspace ? (
        workspaces.data?.length ? (
          <SelectField label="Workspace" value={scope.ws} onChange={(e) => setWorkspace(e.target.value)} options={workspaces.data.map((w) => ({ value: w.id, label: w.name }))} />
        ) : workspaces.isPending ? null : (
          <p className="scope-empty">
            This organisation has no workspace yet: <Link to="/orgs">create one</Link>.
          </p>
        )
      ) : null}
    </div>
  );
}
