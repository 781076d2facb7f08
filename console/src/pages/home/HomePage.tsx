import { Navigate } from 'react-router';
import { useMe } from '../../api/session.ts';
import { ApiErrorNotice } from '../../components/index.ts';

/** /console/: the account page when signed in, the sign-in page otherwise. */
export default function HomePage() {
  const me = useMe();
  if (me.isPending) return <p className="loading" role="status">Loading…</p>;
  if (me.error) return <ApiErrorNotice error={me.error} />;
  return <Navigate to={me.data ? '/me' : '/sign-in'} replace />;
}
