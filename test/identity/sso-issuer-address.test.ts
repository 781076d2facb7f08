/**
 * SSRF through an org's OIDC issuer (AUTH-9): an org admin types the issuer URL, so Gatehouse must
 * not be steered into its own network by it. The literal-address check at configuration time is
 * not enough: a public-looking name can resolve to the cloud metadata address or to loopback (DNS
 * rebinding). Discovery, token and JWKS requests therefore go through an agent that checks every
 * resolved address at connect time. Each test names the address the attack aims at.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { EgressResolver } from '../../src/net/egress.ts';
import { createOidcProtocol, type OidcConnection } from '../../src/federation/oidc.ts';
import { SSO_ERROR_CODES } from '../../src/federation/routes.ts';
import { registerErrorCodes } from '../../src/server/errors.ts';
import { createStateSigner } from '../../src/federation/state.ts';
import { createMemoryKv } from '../../src/store/kv/memory.ts';

const kv = createMemoryKv();
// The feature registers its codes when a node starts; here the protocol runs alone.
beforeAll(() => registerErrorCodes(SSO_ERROR_CODES));

function connection(issuer: string): OidcConnection {
  return { id: '6d0f1c7e-7f5e-4f0e-9d8a-0a1b2c3d4e5f', issuer, clientId: 'gatehouse', scopes: ['openid', 'email'], version: issuer, clientSecret: async () => 'not-used' };
}

/** A resolver that answers one address for every name, and records what it was asked. */
function resolverTo(address: string): { resolve: EgressResolver; asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    resolve: async (hostname) => {
      asked.push(hostname);
      return [{ address, family: address.includes(':') ? 6 : 4 }];
    },
  };
}

async function refusalOf(issuer: string, dns: ReturnType<typeof resolverTo>): Promise<{ code: string | undefined; causes: string[] }> {
  const protocol = createOidcProtocol({ kv, signer: createStateSigner(kv, Date.now), publicOrigin: 'https://gatehouse.example', stateTtlMs: 600_000, clockSkewSeconds: 60, allowInsecureRequests: false, now: Date.now, resolve: dns.resolve });
  try {
    await protocol.start(connection(issuer), 'cookie');
  } catch (err) {
    const causes: string[] = [];
    let cur: unknown = (err as { cause?: unknown }).cause;
    while (cur) {
      causes.push(String((cur as { code?: string }).code ?? (cur as Error).message));
      cur = (cur as { cause?: unknown }).cause;
    }
    return { code: (err as { code?: string }).code, causes };
  }
  throw new Error('discovery was not refused');
}

describe('OIDC issuer addresses are checked after DNS', () => {
  for (const [name, address] of [
    ['the cloud metadata service', '169.254.169.254'],
    ['loopback', '127.0.0.1'],
    ['the private network', '10.1.2.3'],
    ['IPv6 loopback', '::1'],
    ['an IPv4-mapped IPv6 loopback', '::ffff:127.0.0.1'],
  ] as const) {
    it(`attack: an issuer name that resolves to ${name} (${address}) is not reached — SSO_IDP_UNAVAILABLE, refused by address`, async () => {
      const dns = resolverTo(address);
      const refusal = await refusalOf('https://idp.attacker.example/', dns);
      expect(refusal.code).toBe('SSO_IDP_UNAVAILABLE');
      expect(refusal.causes).toContain('PRIVATE_ADDRESS');
      expect(dns.asked).toEqual(['idp.attacker.example']);
    });
  }

  it('attack: an IP-literal issuer inside (the metadata address) is refused without any DNS', async () => {
    const dns = resolverTo('203.0.113.9');
    const refusal = await refusalOf('https://169.254.169.254/', dns);
    expect(refusal.code).toBe('SSO_IDP_UNAVAILABLE');
    expect(refusal.causes).toContain('PRIVATE_ADDRESS');
    expect(dns.asked).toEqual([]);
  });
});
