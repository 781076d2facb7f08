/**
 * The console's build: React + TypeScript bundled by Vite into console/dist (gitignored), served by
 * every node under /console/ (src/console). The output is plain files: one entry script, CSS
 * files, lazily loaded page chunks. Nothing inline (the console's CSP has no 'unsafe-inline'),
 * no external assets, no source maps shipped.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/console/',
  publicDir: false,
  logLevel: 'warn',
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: false,
    // Chromium, Firefox and Safari all support modulepreload: no polyfill (it would be inline-free
    // anyway, but it is bytes on the first screen).
    modulePreload: { polyfill: false },
    // Assets are never inlined as data: URLs in scripts or styles: every file is a file.
    assetsInlineLimit: 0,
    cssCodeSplit: true,
    // dist/.vite/manifest.json: which files each entry and page needs (the size budget test reads it;
    // the node does not serve it).
    manifest: true,
    reportCompressedSize: false,
    rolldownOptions: {
      // react-query marks its modules "use client" (a server-components hint): meaningless in a
      // client-only bundle, so the bundler's note about it is not shown.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
