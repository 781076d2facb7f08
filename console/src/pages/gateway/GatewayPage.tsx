/** The AI gateway of the current org and workspace: provider credentials, model routing, usage and budgets. */
import { useEffectiveScope, useWorkspaces } from '../../api/scope.ts';
import { Page, RequireSession, ScopePicker } from '../../components/index.ts';
import { Budgets } from './Budgets.tsx';
import { Providers } from './Providers.tsx';
import { Routing } from './Routing.tsx';
import { Usage } from './Usage.tsx';
import '../../styles/pages.css';

export default function GatewayPage() {
  const scope = useEffectiveScope();
  const workspaces = useWorkspaces(scope.org);
  return (
    <RequireSession>
      {() => (
        <Page title="Gateway" intro="The workspace's own provider keys, which models it may use, and what the organisation used.">
          <ScopePicker workspace />
          {scope.org && scope.ws ? (
            <>
              <Providers org={scope.org} ws={scope.ws} />
              <Routing org={scope.org} ws={scope.ws} />
            </>
          ) : null}
          {scope.org ? (
            <>
              <Usage org={scope.org} workspaces={workspaces.data ?? []} />
              <Budgets org={scope.org} role={scope.role} workspaces={workspaces.data ?? []} />
            </>
          ) : null}
        </Page>
      )}
    </RequireSession>
  );
}
