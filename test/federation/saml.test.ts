import { describe, expect, it } from 'vitest';
import { createMemoryKv } from '../../src/store/kv/memory.ts';
import { createSamlProtocol, createSpSigningKey, type SamlConnection } from '../../src/federation/saml.ts';

describe('SAML SP metadata of a signing connection', () => {
  it('unseals the SP key once per certificate, not on every request for the public metadata page', async () => {
    const kv = createMemoryKv();
    const saml = createSamlProtocol({ kv, publicOrigin: 'https://gatehouse.example', clockSkewMs: 60_000, requestTtlMs: 600_000, now: Date.now });
    const first = await createSpSigningKey('conn-1', new Date());
    let unsealed = 0;
    const conn = (certificate: string, privateKeyPem: string): SamlConnection => ({
      id: 'conn-1',
      idpEntityId: 'https://idp.example/entity',
      ssoUrl: 'https://idp.example/sso',
      certificates: [certificate],
      wantResponseSigned: false,
      signing: {
        certificate,
        privateKey: async () => {
          unsealed++;
          return privateKeyPem;
        },
      },
    });

    const a = await saml.metadata(conn(first.certificatePem, first.privateKeyPem));
    const b = await saml.metadata(conn(first.certificatePem, first.privateKeyPem));
    expect(unsealed).toBe(1);
    expect(b).toBe(a);
    expect(a).toContain('AuthnRequestsSigned="true"');
    expect(a).toContain('entityID="https://gatehouse.example/v1/auth/sso/saml/conn-1"');

    // Another certificate is another document: the key is unsealed again and the new one published.
    const second = await createSpSigningKey('conn-1', new Date());
    const c = await saml.metadata(conn(second.certificatePem, second.privateKeyPem));
    expect(unsealed).toBe(2);
    const body = (pem: string): string => pem.replace(/-----[^-]+-----|\s/g, '');
    const flat = c.replace(/\s/g, '');
    expect(flat).toContain(body(second.certificatePem));
    expect(flat).not.toContain(body(first.certificatePem));
    // The private key never appears in the document.
    expect(flat).not.toContain(body(second.privateKeyPem).slice(0, 64));
    await kv.close();
  });
});
