import type { ReactNode } from 'react';
import { Navigate, useLocation } from 'react-router';
import { useMe, type Me } from '../api/session.ts';
import { ApiErrorNotice } from './Notice.tsx';

/**
 * Renders `children(me)` for a signed-in user; sends a signed-out one to the sign-in page, which
 * brings them back here afterwards.
 */
export function RequireSession({ children }: { children: (me: NonNullable<Me>) => ReactNode }) {
  const me = useMe();
  const location = useLocation();
  if (me.isPending) return <p className="loading" role="status">Loading…</p>;
  if (me.error) return <ApiErrorNotice error={me.error} />;
  if (!me.data) return <Navigate to={`/sign-in?next=${encodeURIComponent(location.pathname + location.search)}`} replace />;
  return <>{children(me.data)}</>;
}
