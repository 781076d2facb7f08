/**
 * The composition root: every feature module the node runs, in one list (the contract is in
 * src/server/module.ts, the runtime that walks it in src/server/module-runtime.ts). The runtime
 * creates them in dependency order and serves their routes in this order.
 *
 * Adding a feature: a folder with an index.ts that exports its module, one line here, its migration.
 *
 * It lives outside src/server so that server/, store/, crypto/ and config/ never import a feature
 * (enforced by the layer rules in eslint.config.js; test/architecture/ proves they fire and that
 * src/ has no import cycle). src/keyring is infrastructure like src/store; its one route, the JWKS,
 * is served as a static module listed here.
 */
import { auditModule } from './audit/index.ts';
import { backupModule } from './backup/index.ts';
import { budgetsModule } from './budgets/index.ts';
import { consoleModule } from './console/index.ts';
import { gatewayModule } from './gateway/index.ts';
import { guardModule } from './guard/index.ts';
import { identityModule } from './identity/index.ts';
import { jobsModule } from './jobs/index.ts';
import { federationModule } from './federation/index.ts';
import { keyringFeature } from './keyring/routes.ts';
import { mcpModule } from './mcp/index.ts';
import { mcpAuthModule } from './mcp-auth/index.ts';
import { opsModule } from './ops/index.ts';
import { staticModule, type FeatureModule } from './server/module.ts';
import { collectAuditActions } from './server/module-runtime.ts';
import type { SealedColumn } from './server/route.ts';
import { tenancyModule } from './tenancy/index.ts';
import { tokensModule } from './tokens/index.ts';
import { trustModule } from './trust/index.ts';
import { webhooksModule } from './webhooks/index.ts';

export const FEATURE_MODULES: readonly FeatureModule[] = [
  opsModule,
  staticModule(keyringFeature),
  identityModule,
  tenancyModule,
  gatewayModule,
  guardModule,
  mcpModule,
  tokensModule,
  mcpAuthModule,
  federationModule,
  auditModule,
  trustModule,
  webhooksModule,
  jobsModule,
  budgetsModule,
  backupModule,
  consoleModule,
];

/**
 * Every sealed column of every module: what `gatehouse keys rotate dek` re-encrypts, known
 * without starting a node. A test checks it equals what a running node's features declare.
 */
export const SEALED_COLUMNS: readonly SealedColumn[] = FEATURE_MODULES.flatMap((m) => m.sealedColumns ?? []);

/**
 * Every audit action the modules declare: what a node's audit log accepts, known without starting
 * one (the CLI's offline commands record with it).
 */
export const AUDIT_ACTIONS: readonly string[] = collectAuditActions(FEATURE_MODULES);
