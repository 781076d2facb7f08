/**
 * The console's shell: skip link, header with the navigation (a menu button on a phone), the main
 * landmark the pages render into, and a footer. Built from routes.tsx.
 */
import { useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import { NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { api } from './api/client.ts';
import { useMe } from './api/session.ts';
import { Button } from './components/index.ts';
import { ROUTES } from './routes.tsx';

export function Layout() {
  const me = useMe();
  const signedIn = Boolean(me.data);
  const [menuOpen, setMenuOpen] = useState(false);
  const location = useLocation();
  const navigate = useNavigate();
  const queryClient = useQueryClient();
  useEffect(() => setMenuOpen(false), [location.pathname]);
  const entries = ROUTES.filter((r) => r.nav && (me.isPending || r.auth === undefined || r.auth === (signedIn ? 'signed-in' : 'signed-out')));

  const signOut = async () => {
    await api.POST('/v1/auth/logout', { body: {} });
    queryClient.clear();
    await navigate('/sign-in');
  };

  return (
    <div className="shell">
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <NavLink to="/" className="brand">
          Gatehouse
        </NavLink>
        <Button variant="quiet" className="menu-toggle" aria-expanded={menuOpen} aria-controls="main-nav" onClick={() => setMenuOpen(!menuOpen)}>
          Menu
        </Button>
        <nav id="main-nav" aria-label="Main" className={menuOpen ? 'nav nav-open' : 'nav'}>
          <ul>
            {entries.map((r) => (
              <li key={r.path}>
                <NavLink to={`/${r.path}`}>{r.nav}</NavLink>
              </li>
            ))}
          </ul>
          {signedIn ? (
            <div className="nav-account">
              <span className="nav-user">{me.data?.email}</span>
              <Button variant="quiet" onClick={() => void signOut()}>
                Sign out
              </Button>
            </div>
          ) : null}
        </nav>
      </header>
      <main id="main" tabIndex={-1} className="main">
        <Outlet />
      </main>
      <footer className="footer">
        <p>
          Gatehouse console · <a href="/docs">API reference</a>
        </p>
      </footer>
    </div>
  );
}
