/**
 * Native HTTPS (EDGE-1): TLS 1.3 minimum unless 1.2 is opted in, and an optional plain-HTTP
 * listener that only redirects to HTTPS.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { SecureVersion } from 'node:tls';
import type { Config } from '../../config/schema.ts';
import { ConfigError } from '../../config/load.ts';
import { API_CSP, HSTS_VALUE } from './headers.ts';

export interface HttpsOptions {
  key: Buffer;
  cert: Buffer;
  minVersion: SecureVersion;
}

/** The https options for Fastify, or undefined when TLS is not configured. */
export function httpsOptions(config: Config): HttpsOptions | undefined {
  const { certFile, keyFile, minVersion } = config.tls;
  if (!certFile || !keyFile) return undefined;
  const read = (path: string, option: string): Buffer => {
    try {
      return readFileSync(path);
    } catch (err) {
      throw new ConfigError(`${option}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  };
  return { key: read(keyFile, 'tls.keyFile'), cert: read(certFile, 'tls.certFile'), minVersion };
}

/** A server that answers every request with 308 to the same path on the HTTPS origin. */
export function createRedirectServer(httpsPort: number, host: string | undefined): Server {
  return createServer((req, res) => {
    const hostHeader = host ?? (req.headers.host ?? 'localhost').replace(/:\d+$/, '');
    // Only a syntactically valid host name may reach the Location header.
    const safeHost = /^[A-Za-z0-9.-]{1,253}$|^\[[0-9a-fA-F:]+\]$/.test(hostHeader) ? hostHeader : 'localhost';
    const path = (req.url ?? '/').startsWith('/') ? (req.url ?? '/') : '/';
    const port = httpsPort === 443 ? '' : `:${httpsPort}`;
    res.writeHead(308, {
      location: `https://${safeHost}${port}${path}`,
      'content-security-policy': API_CSP,
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
      'strict-transport-security': HSTS_VALUE,
      'content-length': '0',
    });
    res.end();
  });
}
