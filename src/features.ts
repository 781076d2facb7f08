/**
 * The composition root: every feature the server serves, in one list.
 * It lives outside src/server so that server/, store/, crypto/ and config/ never import a feature
 * (enforced by the layer rules in eslint.config.js; test/architecture/ proves they fire and that
 * src/ has no import cycle).
 *
 * src/keyring is infrastructure like src/store (it imports store, crypto and the route types,
 * never a feature); its one route, the JWKS, is served as a feature listed here.
 */
import { keyringFeature } from './keyring/routes.ts';
import { opsFeature } from './ops/routes.ts';
import type { Feature, SealedColumn } from './server/route.ts';
import { MFA_SEALED_COLUMNS } from './identity/mfa.ts';
import { GATEWAY_SEALED_COLUMNS } from './gateway/routes.ts';
import { SSO_SEALED_COLUMNS } from './identity/federation/sso.ts';
import { MAIL_SEALED_COLUMNS } from './identity/mail-queue.ts';

export const FEATURES: readonly Feature[] = [opsFeature, keyringFeature];

/**
 * Every sealed column of every feature, including those built at start (identity, gateway): what
 * `gatehouse keys rotate dek` re-encrypts. A test checks it equals what a running node declares.
 */
export const SEALED_COLUMNS: readonly SealedColumn[] = [...FEATURES.flatMap((f) => f.sealedColumns ?? []), ...MFA_SEALED_COLUMNS, ...GATEWAY_SEALED_COLUMNS, ...SSO_SEALED_COLUMNS, ...MAIL_SEALED_COLUMNS];
