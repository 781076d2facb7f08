/**
 * The web console (issue 25, UI-*): a single-page app built from console/ (React + TypeScript,
 * Vite) into console/dist and served by every node under /console/ with a strict CSP. It calls
 * only the public API, in cookie mode with CSRF.
 */
import { defineModule, moduleRef } from '../server/module.ts';
import { loadConsoleAssets } from './assets.ts';
import { CONSOLE_ERROR_CODES, consoleRoutes } from './routes.ts';

export { CONSOLE_CSP } from './csp.ts';
export { CONSOLE_DIST } from './assets.ts';

export const CONSOLE = moduleRef<undefined>('console');

export const consoleModule = defineModule({
  ref: CONSOLE,
  dependsOn: [],
  create: (ctx) => {
    const assets = loadConsoleAssets();
    if (!assets) ctx.logger.warn('console/dist is missing: the web console answers 503 CONSOLE_NOT_BUILT (run `npm run build:console`)');
    return { api: undefined, feature: { id: 'console', errorCodes: CONSOLE_ERROR_CODES, routes: consoleRoutes(assets) } };
  },
});
