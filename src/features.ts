/**
 * The composition root: every feature the server serves, in one list.
 * It lives outside src/server so that server/, store/, crypto/ and config/ never import a feature.
 *
 * src/keyring is infrastructure like src/store (it imports store, crypto and the route types,
 * never a feature); its one
 * route, the JWKS, is served as a feature listed here.
 */
import { keyringFeature } from './keyring/routes.ts';
import { opsFeature } from './ops/routes.ts';
import type { Feature } from './server/route.ts';

export const FEATURES: readonly Feature[] = [opsFeature, keyringFeature];
