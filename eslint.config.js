// Lint with TypeScript rules and security rules (OPS-5). Type-aware rules stay off to keep CI fast;
// `npm run typecheck` covers types.
import { readdirSync } from 'node:fs';
import js from '@eslint/js';
import security from 'eslint-plugin-security';
import tseslint from 'typescript-eslint';

// The layers of docs/ARCHITECTURE (src/): infrastructure at the bottom, features above it, the
// composition root (features.ts, cli/) on top. Every other folder of src/ is a feature, so a new
// feature is covered the day its folder appears.
const INFRASTRUCTURE = ['crypto', 'config', 'store', 'net', 'server', 'keyring'];
const COMPOSITION = ['cli'];
const FEATURES = readdirSync(new URL('./src/', import.meta.url), { withFileTypes: true })
  .filter((entry) => entry.isDirectory() && !INFRASTRUCTURE.includes(entry.name) && !COMPOSITION.includes(entry.name))
  .map((entry) => entry.name)
  .sort();
const SOURCE_ONLY = ['src/**/*.test.ts', 'src/**/*.shared-suite.ts'];

const INFRASTRUCTURE_MESSAGE =
  "infrastructure never imports a feature: pass what you need in through the feature's create(ctx) or move the shared piece down into store/server";
const FEATURE_MESSAGE =
  "a feature imports another feature only through its index.ts (export what you need there), or the shared piece moves down into store/server; features never import cli/ or features.ts";

/** Infrastructure imports no feature and not the composition root. */
const infrastructureLayer = {
  files: INFRASTRUCTURE.map((dir) => `src/${dir}/**/*.ts`),
  ignores: SOURCE_ONLY,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: [...FEATURES, ...COMPOSITION].map((dir) => `**/${dir}/**`).concat('**/features.ts'),
            message: INFRASTRUCTURE_MESSAGE,
          },
        ],
      },
    ],
  },
};

/** A feature reaches another feature only through that feature's index.ts, and never the composition root. */
const featureLayers = FEATURES.map((feature) => ({
  files: [`src/${feature}/**/*.ts`],
  ignores: SOURCE_ONLY,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: [
              ...FEATURES.filter((other) => other !== feature).flatMap((other) => [`**/${other}/**`, `!**/${other}/index.ts`]),
              ...COMPOSITION.map((dir) => `**/${dir}/**`),
              '**/features.ts',
            ],
            message: FEATURE_MESSAGE,
          },
        ],
      },
    ],
  },
}));

/** The composition root (cli/, features.ts) reaches a feature only through its index.ts, like another feature. */
const compositionLayer = {
  files: [...COMPOSITION.map((dir) => `src/${dir}/**/*.ts`), 'src/features.ts'],
  ignores: SOURCE_ONLY,
  rules: {
    'no-restricted-imports': [
      'error',
      {
        patterns: [
          {
            group: [
              ...FEATURES.flatMap((feature) => [`**/${feature}/**`, `!**/${feature}/index.ts`]),
              // The offline audit verifier: a surface that reaches no storage (src/audit/offline.ts).
              '!**/audit/offline.ts',
            ],
            message: "the composition root (cli/, features.ts) uses a feature only through its index.ts: export what the command needs there",
          },
        ],
      },
    ],
  },
};

export default tseslint.config(
  { ignores: ['node_modules/', '.gatehouse/', 'coverage/', 'web/dist/', 'console/dist/', 'test-artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  security.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly', setTimeout: 'readonly', clearTimeout: 'readonly', setInterval: 'readonly', clearInterval: 'readonly', setImmediate: 'readonly', queueMicrotask: 'readonly', fetch: 'readonly', AbortSignal: 'readonly', structuredClone: 'readonly', TextEncoder: 'readonly', TextDecoder: 'readonly' } },
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-eval': 'error',
      'no-new-func': 'error',
      'no-implied-eval': 'error',
      // Object lookups by computed keys are everywhere in typed code; the rule cannot tell
      // user-controlled keys from constants and would bury real findings.
      'security/detect-object-injection': 'off',
      // Paths come from configuration and our own files, never from requests.
      'security/detect-non-literal-fs-filename': 'off',
    },
  },
  {
    files: ['test/**', 'src/**/*.test.ts', 'src/**/*.shared-suite.ts', 'bench/**', 'scripts/**'],
    rules: { 'security/detect-child-process': 'off', 'security/detect-non-literal-regexp': 'off' },
  },
  {
    // The web console runs in a browser (console/src): its globals, and the API types are generated.
    files: ['console/src/**'],
    languageOptions: { globals: { window: 'readonly', document: 'readonly', navigator: 'readonly', location: 'readonly', history: 'readonly', Request: 'readonly', Response: 'readonly', Headers: 'readonly', HTMLElement: 'readonly', HTMLDialogElement: 'readonly', HTMLHeadingElement: 'readonly', HTMLCanvasElement: 'readonly', PublicKeyCredential: 'readonly', performance: 'readonly', atob: 'readonly', btoa: 'readonly', crypto: 'readonly', FormData: 'readonly', Blob: 'readonly' } },
  },
  { files: ['console/src/api/schema.d.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  infrastructureLayer,
  ...featureLayers,
  compositionLayer,
);
