/**
 * The gateway's configuration. The schemas live in src/config/gateway.ts (the `gateway` section of
 * the one config schema, which may import no feature); they are re-exported here for the gateway.
 */
export {
  breakerConfigSchema,
  gatewaySection as gatewayConfigSchema,
  retryConfigSchema,
  timeoutsConfigSchema,
  upstreamConfigSchema,
  type BreakerConfig,
  type GatewayConfig,
  type PlatformProviderConfig,
  type RetryConfig,
  type TimeoutsConfig,
  type UpstreamConfig,
} from '../config/gateway.ts';
