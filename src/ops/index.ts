/** The ops feature's public face: health, readiness, metrics and the well-known files, as a module. */
import { staticModule } from '../server/module.ts';
import { opsFeature } from './routes.ts';

export const opsModule = staticModule(opsFeature);
