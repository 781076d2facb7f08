/**
 * SAML metadata and keys (AUTH-9, see saml.ts): the IdP metadata an org uploads, parsed and checked
 * (entity id, a Redirect SSO endpoint, signing certificates; no DOCTYPE), and the SP signing key
 * with its self-signed certificate for signed AuthnRequests.
 */
import { createPrivateKey, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import { DOMParser } from '@xmldom/xmldom';
import { AppError } from '../server/errors.ts';

const MD_NS = 'urn:oasis:names:tc:SAML:2.0:metadata';
const DS_NS = 'http://www.w3.org/2000/09/xmldsig#';
const REDIRECT_BINDING = 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect';

/** What an org's IdP metadata says, as stored on its connection. */
export interface IdpMetadata {
  entityId: string;
  ssoUrl: string;
  /** Signing certificates, PEM. */
  certificates: string[];
}

function metadataError(why: string): AppError {
  return new AppError('SSO_METADATA_INVALID', `The IdP metadata is not usable: ${why}.`);
}

function toPem(der: Buffer): string {
  const lines = der.toString('base64').match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join('\n')}\n-----END CERTIFICATE-----\n`;
}

/** The DER bytes of a PEM certificate. */
export function pemToDer(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, ''), 'base64');
}

/**
 * Reads entity id, the HTTP-Redirect SSO URL and the signing certificates from IdP metadata.
 * Refuses a DOCTYPE (no entities of any kind), anything but one IdP entity, an SSO URL that is not
 * https (unless insecure URLs are allowed for a local test IdP), and metadata without a signing
 * certificate: an assertion could then not be checked at all.
 */
export function parseIdpMetadata(xml: string, options: { allowInsecureUrls: boolean }): IdpMetadata {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw metadataError('a DOCTYPE or entity declaration is not accepted');
  const problems: string[] = [];
  const doc = new DOMParser({
    errorHandler: { warning: () => undefined, error: (m: string) => void problems.push(m), fatalError: (m: string) => void problems.push(m) },
  }).parseFromString(xml, 'text/xml');
  const root = doc?.documentElement;
  if (!root || problems.length > 0) throw metadataError('it is not well-formed XML');
  let entity: Element | undefined;
  if (root.namespaceURI === MD_NS && root.localName === 'EntityDescriptor') entity = root;
  else if (root.namespaceURI === MD_NS && root.localName === 'EntitiesDescriptor') {
    const all = Array.from(root.getElementsByTagNameNS(MD_NS, 'EntityDescriptor')).filter((e) => e.getElementsByTagNameNS(MD_NS, 'IDPSSODescriptor').length > 0);
    if (all.length !== 1) throw metadataError('it must describe exactly one identity provider');
    entity = all[0];
  }
  if (!entity) throw metadataError('the root element is not an md:EntityDescriptor');
  const entityId = entity.getAttribute('entityID') ?? '';
  if (entityId.length === 0 || entityId.length > 1024) throw metadataError('entityID is missing');
  const idps = Array.from(entity.getElementsByTagNameNS(MD_NS, 'IDPSSODescriptor'));
  const idp = idps[0];
  if (idps.length !== 1 || !idp) throw metadataError('it has no single IDPSSODescriptor');
  if (!(idp.getAttribute('protocolSupportEnumeration') ?? '').split(/\s+/).includes('urn:oasis:names:tc:SAML:2.0:protocol')) {
    throw metadataError('the IdP does not support SAML 2.0');
  }
  const sso = Array.from(idp.getElementsByTagNameNS(MD_NS, 'SingleSignOnService')).find((e) => e.getAttribute('Binding') === REDIRECT_BINDING);
  const ssoUrl = sso?.getAttribute('Location') ?? '';
  let parsedUrl: URL;
  try {
    parsedUrl = new URL(ssoUrl);
  } catch {
    throw metadataError('it has no SingleSignOnService with the HTTP-Redirect binding');
  }
  if (ssoUrl.length > 2048 || !(parsedUrl.protocol === 'https:' || (options.allowInsecureUrls && parsedUrl.protocol === 'http:'))) {
    throw metadataError('the SingleSignOnService location must be an https URL');
  }
  const certificates: string[] = [];
  for (const kd of Array.from(idp.getElementsByTagNameNS(MD_NS, 'KeyDescriptor'))) {
    // No use attribute: the key serves both signing and encryption.
    const use = kd.getAttribute('use');
    if (use && use !== 'signing') continue;
    for (const c of Array.from(kd.getElementsByTagNameNS(DS_NS, 'X509Certificate'))) {
      const der = Buffer.from((c.textContent ?? '').replace(/\s+/g, ''), 'base64');
      try {
        new X509Certificate(der);
      } catch {
        throw metadataError('a signing certificate cannot be read');
      }
      certificates.push(toPem(der));
    }
  }
  if (certificates.length === 0) throw metadataError('it has no signing certificate');
  if (certificates.length > 10) throw metadataError('it has more than 10 signing certificates');
  return { entityId, ssoUrl, certificates };
}

/** The algorithm of an SP signing key: what IdPs accept for signed AuthnRequests (RSA-SHA256). */
const SP_KEY_ALGORITHM = { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256', publicExponent: new Uint8Array([1, 0, 1]), modulusLength: 2048 } as const;
/** How long an SP signing certificate is valid. IdPs check it at import; it cannot be renewed without re-import. */
const SP_CERT_YEARS = 10;

/**
 * A new SP signing key for a connection: RSA 2048 and a self-signed certificate naming the
 * connection, for the IdP to verify our AuthnRequests with.
 * @example const { privateKeyPem, certificatePem } = await createSpSigningKey(connectionId, new Date())
 */
export async function createSpSigningKey(connectionId: string, now: Date): Promise<{ privateKeyPem: string; certificatePem: string }> {
  // Loaded when a key is made, not at start: the certificate library needs the Reflect metadata
  // polyfill (as @simplewebauthn/server's certificate checks do), and most nodes never make a key.
  await import('reflect-metadata');
  const { KeyUsageFlags, KeyUsagesExtension, X509CertificateGenerator } = await import('@peculiar/x509');
  const keys = await webcrypto.subtle.generateKey(SP_KEY_ALGORITHM, true, ['sign', 'verify']);
  const serial = randomBytes(16);
  serial[0] = (serial[0] ?? 0) & 0x7f; // a positive serial number
  const notAfter = new Date(now);
  notAfter.setUTCFullYear(notAfter.getUTCFullYear() + SP_CERT_YEARS);
  const certificate = await X509CertificateGenerator.createSelfSigned({
    serialNumber: serial.toString('hex'),
    name: `CN=Gatehouse SAML SP ${connectionId}`,
    notBefore: now,
    notAfter,
    signingAlgorithm: SP_KEY_ALGORITHM,
    // node:crypto's CryptoKeyPair and the DOM one the library types against differ only in the KeyUsage list.
    keys: keys as unknown as Parameters<(typeof X509CertificateGenerator)['createSelfSigned']>[0]['keys'],
    extensions: [new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true)],
  });
  // PEM as node-saml takes it, written by node:crypto from the PKCS #8 bytes.
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', keys.privateKey));
  const privateKeyPem = createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'pem' }).toString();
  return { privateKeyPem, certificatePem: certificate.toString('pem') };
}
