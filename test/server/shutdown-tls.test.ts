/**
 * Graceful shutdown finishes in-flight requests; native TLS (EDGE-1) serves TLS 1.3 by default,
 * refuses older clients, sends HSTS, and the plain-HTTP listener only redirects.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:tls';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { createTestApp } from '../support/app.ts';
import { fixtureFeature } from '../support/fixture-feature.ts';
import { createRedirectServer } from '../../src/server/edge/tls.ts';

describe('graceful shutdown', () => {
  it('a request in flight when close() starts completes with 200; new connections are refused after', async () => {
    const t = await createTestApp({ extraFeatures: [fixtureFeature] });
    const url = await t.app.listen({ host: '127.0.0.1', port: 0 });
    const inflight = fetch(`${url}/test/slow?ms=600`);
    await new Promise((r) => setTimeout(r, 150));
    const closing = t.close();
    const res = await inflight;
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ waited: 600 });
    await closing;
    await expect(fetch(`${url}/healthz`)).rejects.toThrow();
  });
});

function makeCert(): { certFile: string; keyFile: string; cert: Buffer } {
  const dir = mkdtempSync(join(tmpdir(), 'gh-tls-'));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', keyFile, '-out', certFile,
  ], { stdio: 'ignore' });
  return { certFile, keyFile, cert: readFileSync(certFile) };
}

function get(url: string, ca: Buffer): Promise<{ status: number; headers: Record<string, unknown>; protocol: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { ca }, (res) => {
      res.resume();
      const socket = res.socket as import('node:tls').TLSSocket;
      resolve({ status: res.statusCode ?? 0, headers: res.headers, protocol: socket.getProtocol() ?? '' });
    });
    req.on('error', reject);
    req.end();
  });
}

function handshake(port: number, maxVersion: 'TLSv1.2' | 'TLSv1.3', ca: Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca, maxVersion, minVersion: 'TLSv1.2' }, () => {
      const p = socket.getProtocol() ?? '';
      socket.end();
      resolve(p);
    });
    socket.on('error', reject);
  });
}

describe('native TLS', () => {
  const { certFile, keyFile, cert } = makeCert();

  it('TLS 1.3 by default with HSTS (2 years, includeSubDomains, preload); a TLS 1.2-only client is refused', async () => {
    const t = await createTestApp({ env: { GATEHOUSE_TLS_CERT_FILE: certFile, GATEHOUSE_TLS_KEY_FILE: keyFile } });
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as AddressInfo).port;
      const res = await get(`https://localhost:${port}/healthz`, cert);
      expect(res.status).toBe(200);
      expect(res.protocol).toBe('TLSv1.3');
      expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains; preload');
      await expect(handshake(port, 'TLSv1.2', cert)).rejects.toThrow(/protocol|version|alert/i);
    } finally {
      await t.close();
    }
  });

  it('TLS 1.2 is accepted only when opted in', async () => {
    const t = await createTestApp({ env: { GATEHOUSE_TLS_CERT_FILE: certFile, GATEHOUSE_TLS_KEY_FILE: keyFile, GATEHOUSE_TLS_MIN_VERSION: 'TLSv1.2' } });
    try {
      await t.app.listen({ host: '127.0.0.1', port: 0 });
      const port = (t.app.server.address() as AddressInfo).port;
      expect(await handshake(port, 'TLSv1.2', cert)).toBe('TLSv1.2');
    } finally {
      await t.close();
    }
  });

  it('the HTTP listener only redirects (308) to the HTTPS origin, keeping the path; a Host header that is not a host name cannot steer the redirect', async () => {
    const server = createRedirectServer(8443, undefined);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const res = await new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/v1/me?x=1', method: 'POST', headers: { host: 'gate.example.com:80' } }, (r) => {
          r.resume();
          resolve({ status: r.statusCode ?? 0, headers: r.headers });
        });
        req.on('error', reject);
        req.end('{}');
      });
      expect(res.status).toBe(308);
      expect(res.headers.location).toBe('https://gate.example.com:8443/v1/me?x=1');
      expect(res.headers['strict-transport-security']).toBe('max-age=63072000; includeSubDomains; preload');
      // A Host header that is not a host name cannot steer the Location.
      const evil = await new Promise<{ headers: Record<string, unknown> }>((resolve, reject) => {
        const req = httpRequest({ host: '127.0.0.1', port, path: '/', headers: { host: 'evil.example/@x' } }, (r) => {
          r.resume();
          resolve({ headers: r.headers });
        });
        req.on('error', reject);
        req.end();
      });
      expect(evil.headers.location).toBe('https://localhost:8443/');
    } finally {
      server.close();
    }
  });
});
