/** The console's entry: data cache, router (basename /console) and the shell. */
import { QueryClientProvider } from '@tanstack/react-query';
import { StrictMode, Suspense } from 'react';
import { createRoot } from 'react-dom/client';
import { createBrowserRouter, RouterProvider } from 'react-router';
import { queryClient } from './api/query.ts';
import { Layout } from './Layout.tsx';
import { ROUTES } from './routes.tsx';
import './styles/base.css';
import './styles/kit.css';
import './styles/layout.css';

const router = createBrowserRouter(
  [
    {
      element: <Layout />,
      children: ROUTES.map(({ path, page: PageComponent }) => ({
        path: path === '' ? '/' : path,
        element: (
          <Suspense fallback={<p className="loading" role="status">Loading…</p>}>
            <PageComponent />
          </Suspense>
        ),
      })),
    },
  ],
  { basename: '/console' },
);

const root = document.getElementById('root');
if (root) {
  createRoot(root).render(
    <StrictMode>
      <QueryClientProvider client={queryClient}>
        <RouterProvider router={router} />
      </QueryClientProvider>
    </StrictMode>,
  );
}
