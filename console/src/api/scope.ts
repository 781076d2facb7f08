/**
 * The org and workspace the console is working in: chosen on the Orgs page (or in the picker of
 * any page), remembered in localStorage (ids only, nothing secret) and shared by every page
 * through useSyncExternalStore, so switching in one place switches everywhere.
 */
import { useQuery } from '@tanstack/react-query';
import { useSyncExternalStore } from 'react';
import { api, unwrap } from './client.ts';

const ORG_KEY = 'gatehouse.console.org';
const WS_KEY = 'gatehouse.console.workspace';
const listeners = new Set<() => void>();

function read(key: string): string {
  try {
    return localStorage.getItem(key) ?? '';
  } catch {
    return '';
  }
}

function write(key: string, value: string): void {
  try {
    if (value) localStorage.setItem(key, value);
    else localStorage.removeItem(key);
  } catch {
    // Private mode without storage: the choice lasts as long as the page.
  }
}

let current = { org: read(ORG_KEY), ws: read(WS_KEY) };

/** Chooses the current org (and clears the workspace unless given). */
export function setScope(org: string, ws = ''): void {
  current = { org, ws };
  write(ORG_KEY, org);
  write(WS_KEY, ws);
  for (const l of listeners) l();
}

/** Chooses the current workspace of the current org. */
export function setWorkspace(ws: string): void {
  setScope(current.org, ws);
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The chosen org and workspace ids ('' when none). */
export function useScope(): { org: string; ws: string } {
  return useSyncExternalStore(subscribe, () => current);
}

export const ORGS_KEY = ['orgs'] as const;

/** The orgs the user belongs to, with their role in each. */
export function useOrgs() {
  return useQuery({ queryKey: ORGS_KEY, queryFn: async () => (await unwrap(api.GET('/v1/orgs'))).orgs });
}

/** The workspaces of an org (none when no org is chosen). */
export function useWorkspaces(org: string) {
  return useQuery({
    queryKey: ['orgs', org, 'workspaces'],
    enabled: Boolean(org),
    queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/workspaces', { params: { path: { org } } }))).workspaces,
  });
}

/**
 * The scope a page works in, falling back to the first org and workspace when none was chosen
 * (or the chosen one is gone): `org`/`ws` are '' while loading or when there is none.
 */
export function useEffectiveScope(): { org: string; ws: string; orgName: string; wsName: string; role: string; loading: boolean } {
  const scope = useScope();
  const orgs = useOrgs();
  const org = orgs.data?.find((o) => o.id === scope.org) ?? orgs.data?.[0];
  const workspaces = useWorkspaces(org?.id ?? '');
  const ws = workspaces.data?.find((w) => w.id === scope.ws) ?? workspaces.data?.[0];
  return {
    org: org?.id ?? '',
    ws: ws?.id ?? '',
    orgName: org?.name ?? '',
    wsName: ws?.name ?? '',
    role: org?.role ?? '',
    loading: orgs.isPending || (Boolean(org) && workspaces.isPending),
  };
}

/**
 * The caller's effective role in a workspace, as the API's authorizer computes it (the org role,
 * narrowed by a workspace role): '' while loading or when it cannot be read.
 */
export function useWorkspaceRole(org: string, ws: string): string {
  const detail = useQuery({
    queryKey: ['orgs', org, 'workspaces', ws],
    enabled: Boolean(org && ws),
    queryFn: () => unwrap(api.GET('/v1/orgs/{org}/workspaces/{ws}', { params: { path: { org, ws } } })),
  });
  return detail.data?.role ?? '';
}
