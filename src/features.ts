/**
 * The composition root: every feature the server serves, in one list.
 * It lives outside src/server so that server/, store/, crypto/ and config/ never import a feature.
 */
import { opsFeature } from './ops/routes.ts';
import type { Feature } from './server/route.ts';

export const FEATURES: readonly Feature[] = [opsFeature];
