/**
 * SAML 2.0 for enterprise SSO, SP-initiated: an AuthnRequest by HTTP-Redirect, the IdP's
 * Response by HTTP-POST to our ACS. @node-saml/node-saml checks the XML signatures (the assertion
 * must be signed by a certificate from the IdP metadata; the Response too when the connection asks
 * for it; a document with more than one assertion is refused, which defeats signature wrapping),
 * the audience, the time window with the configured skew, and InResponseTo against the
 * AuthnRequests this deployment issued (kept in kv, so any node can receive the Response).
 * What it leaves out is checked here, on the signed assertion only: the issuer is the IdP's entity
 * id, a bearer SubjectConfirmation names our ACS as Recipient, the Response's Destination (when
 * present) is our ACS, and the assertion id was never accepted before (replay cache in kv, kept
 * until the assertion expires).
 *
 * The IdP metadata and the SP signing key are in saml-metadata.ts.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CacheProvider, Profile, SAML } from '@node-saml/node-saml';
import { DOMParser } from '@xmldom/xmldom';
import { AppError } from '../server/errors.ts';
import type { Kv } from '../store/kv/types.ts';

export { createSpSigningKey, parseIdpMetadata, pemToDer, type IdpMetadata } from './saml-metadata.ts';

const BEARER = 'urn:oasis:names:tc:SAML:2.0:cm:bearer';
const EMAIL_FORMAT = 'urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress';
const EMAIL_ATTRIBUTES = ['email', 'mail', 'urn:oid:0.9.2342.19200300.100.1.3', 'http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress'];

/** node-saml's AuthnRequest-id cache, in kv: an id issued on one node is known on every node. */
export function kvRequestCache(kv: Kv, connectionId: string, ttlMs: number): CacheProvider {
  const keyOf = (id: string): string => `sso:saml:req:${connectionId}:${createHash('sha256').update(id).digest('base64url')}`;
  return {
    async saveAsync(key, value) {
      const createdAt = Date.now();
      return (await kv.setIfAbsent(keyOf(key), value, ttlMs)) ? { value, createdAt } : null;
    },
    async getAsync(key) {
      return kv.get(keyOf(key));
    },
    async removeAsync(key) {
      if (key === null) return null;
      const value = await kv.get(keyOf(key));
      await kv.del(keyOf(key));
      return value;
    },
  };
}

export interface SamlConnection {
  id: string;
  idpEntityId: string;
  ssoUrl: string;
  certificates: readonly string[];
  wantResponseSigned: boolean;
  /** Present when AuthnRequests are signed: the SP's private key (PEM, unsealed on use) and certificate (PEM). */
  signing?: { privateKey: () => Promise<string>; certificate: string };
}

export interface SamlSettings {
  kv: Kv;
  publicOrigin: string;
  clockSkewMs: number;
  requestTtlMs: number;
  now: () => number;
}

/** Our SP entity id for a connection (also the audience the IdP must name). */
export const spEntityIdOf = (publicOrigin: string, connectionId: string): string => `${publicOrigin}/v1/auth/sso/saml/${connectionId}`;
export const acsUrlOf = (publicOrigin: string, connectionId: string): string => `${publicOrigin}/v1/auth/sso/saml/${connectionId}/acs`;

/** Why an asserted response was refused: a short reason for the audit log and a loggable detail. */
export class SamlRefusal extends Error {
  readonly reason: string;
  readonly replayed: boolean;
  constructor(reason: string, detail: string, replayed = false) {
    super(detail);
    this.reason = reason;
    this.replayed = replayed;
  }
}

/** Signing connections whose SP metadata a node keeps ready. */
const MAX_CACHED_METADATA = 256;

type Node = Record<string, unknown>;
const first = (v: unknown): Node | undefined => (Array.isArray(v) && typeof v[0] === 'object' && v[0] !== null ? (v[0] as Node) : undefined);
const attrs = (n: Node | undefined): Record<string, string> => (n && typeof n.$ === 'object' && n.$ !== null ? (n.$ as Record<string, string>) : {});
const text = (n: unknown): string | undefined => {
  if (typeof n === 'string') return n;
  if (n && typeof n === 'object' && typeof (n as Node)._ === 'string') return (n as Node)._ as string;
  return undefined;
};

/** The Response's root Destination, read from the raw document (it may be outside the signature). */
function destinationOf(samlResponse: string): string | null {
  const xml = Buffer.from(samlResponse, 'base64').toString('utf8');
  const doc = new DOMParser({ errorHandler: { warning: () => undefined, error: () => undefined, fatalError: () => undefined } }).parseFromString(xml, 'text/xml');
  return doc?.documentElement?.getAttribute('Destination') || null;
}

/** Our SP metadata for a connection; for a signing connection, cached per certificate. */
async function spMetadata(
  conn: SamlConnection,
  client: (conn: SamlConnection, onRequestId?: (id: string) => void, privateKey?: string) => Promise<SAML>,
  signedMetadata: Map<string, string>,
): Promise<string> {
  if (!conn.signing) return (await client(conn)).generateServiceProviderMetadata(null, null);
  // node-saml states AuthnRequestsSigned from the presence of the key; only the certificate is
  // written. The document depends on nothing else than the connection id and that certificate,
  // so the key is unsealed once per certificate, not on every anonymous request for the page.
  const cacheKey = `${conn.id}\n${conn.signing.certificate}`;
  const cached = signedMetadata.get(cacheKey);
  if (cached !== undefined) return cached;
  const xml = (await client(conn, undefined, await conn.signing.privateKey())).generateServiceProviderMetadata(null, conn.signing.certificate);
  if (signedMetadata.size >= MAX_CACHED_METADATA) signedMetadata.delete(signedMetadata.keys().next().value as string);
  signedMetadata.set(cacheKey, xml);
  return xml;
}

export function createSamlProtocol(settings: SamlSettings) {
  const { kv, publicOrigin, clockSkewMs, requestTtlMs, now } = settings;
  /** SP metadata of signing connections, by connection id and certificate (oldest dropped first). */
  const signedMetadata = new Map<string, string>();

  async function client(conn: SamlConnection, onRequestId?: (id: string) => void, privateKey?: string): Promise<SAML> {
    // node-saml and its XML stack (about 4 MB of heap) are loaded by the first SAML request, not by every node.
    const { SAML, ValidateInResponseTo } = await import('@node-saml/node-saml');
    return new SAML({
      // With a key, node-saml signs the AuthnRequest of the HTTP-Redirect binding (SigAlg, Signature).
      ...(privateKey !== undefined ? { privateKey } : {}),
      callbackUrl: acsUrlOf(publicOrigin, conn.id),
      issuer: spEntityIdOf(publicOrigin, conn.id),
      audience: spEntityIdOf(publicOrigin, conn.id),
      entryPoint: conn.ssoUrl,
      idpCert: [...conn.certificates],
      idpIssuer: conn.idpEntityId,
      wantAssertionsSigned: true,
      wantAuthnResponseSigned: conn.wantResponseSigned,
      acceptedClockSkewMs: clockSkewMs,
      validateInResponseTo: ValidateInResponseTo.always,
      requestIdExpirationPeriodMs: requestTtlMs,
      cacheProvider: kvRequestCache(kv, conn.id, requestTtlMs),
      identifierFormat: null,
      disableRequestedAuthnContext: true,
      signatureAlgorithm: 'sha256',
      generateUniqueId: () => {
        const id = `_${randomBytes(20).toString('hex')}`;
        onRequestId?.(id);
        return id;
      },
    });
  }

  /** The IdP URL carrying a fresh AuthnRequest, and that request's id (bound to the browser by the caller). */
  async function start(conn: SamlConnection): Promise<{ url: string; requestId: string }> {
    let requestId = '';
    const privateKey = conn.signing ? await conn.signing.privateKey() : undefined;
    const saml = await client(
      conn,
      (id) => {
        requestId = id;
      },
      privateKey,
    );
    const url = await saml.getAuthorizeUrlAsync('', undefined, {});
    if (!requestId) throw new AppError('INTERNAL', 'no AuthnRequest id');
    return { url, requestId };
  }

  /**
   * Validates a posted Response for the connection and returns who the IdP says signed in:
   * NameID as subject, an email from the usual attributes (or an email-format NameID), and the
   * request id it answered. Throws SamlRefusal.
   */
  async function acs(conn: SamlConnection, samlResponse: string): Promise<{ subject: string; email: string | null; inResponseTo: string }> {
    const acsUrl = acsUrlOf(publicOrigin, conn.id);
    if (/<!DOCTYPE|<!ENTITY/i.test(Buffer.from(samlResponse, 'base64').toString('utf8'))) throw new SamlRefusal('doctype', 'a DOCTYPE in the response');
    let profile: Profile | null;
    try {
      ({ profile } = await (await client(conn)).validatePostResponseAsync({ SAMLResponse: samlResponse }));
    } catch (err) {
      throw new SamlRefusal('validation', err instanceof Error ? err.message : 'invalid response');
    }
    if (!profile || typeof profile.getAssertion !== 'function') throw new SamlRefusal('no-assertion', 'the response carries no assertion');
    const assertion = (profile.getAssertion() as Node).Assertion as Node | undefined;
    if (!assertion) throw new SamlRefusal('no-assertion', 'the signed part is not an assertion');
    if (text(first(assertion.Issuer)) !== conn.idpEntityId) throw new SamlRefusal('issuer', 'the assertion issuer is not the IdP entity id');
    const destination = destinationOf(samlResponse);
    if (destination !== null && destination !== acsUrl) throw new SamlRefusal('destination', 'the response Destination is not our ACS URL');
    const subject = first(assertion.Subject);
    const confirmations = Array.isArray(subject?.SubjectConfirmation) ? (subject.SubjectConfirmation as Node[]) : [];
    const bearer = confirmations.filter((c) => attrs(c).Method === BEARER).map((c) => attrs(first(c.SubjectConfirmationData)));
    if (bearer.length === 0) throw new SamlRefusal('recipient', 'no bearer SubjectConfirmation');
    if (!bearer.every((d) => d.Recipient === acsUrl)) throw new SamlRefusal('recipient', 'the SubjectConfirmation Recipient is not our ACS URL');
    const inResponseTo = typeof profile.inResponseTo === 'string' ? profile.inResponseTo : '';
    if (!inResponseTo || !bearer.every((d) => d.InResponseTo === inResponseTo)) throw new SamlRefusal('in-response-to', 'the assertion answers another request');
    // The replay cache keeps an id until the assertion could no longer be accepted anyway.
    const conditions = attrs(first(assertion.Conditions));
    const ends = [conditions.NotOnOrAfter, ...bearer.map((d) => d.NotOnOrAfter)].filter((v): v is string => typeof v === 'string').map((v) => Date.parse(v)).filter((v) => Number.isFinite(v));
    if (ends.length === 0) throw new SamlRefusal('time', 'the assertion has no NotOnOrAfter');
    const assertionId = attrs(assertion).ID;
    if (!assertionId) throw new SamlRefusal('no-id', 'the assertion has no ID');
    const ttlMs = Math.max(1000, Math.min(...ends) + clockSkewMs - now());
    const firstUse = await kv.setIfAbsent(`sso:saml:assertion:${conn.id}:${createHash('sha256').update(assertionId).digest('base64url')}`, '1', ttlMs);
    if (!firstUse) throw new SamlRefusal('replayed', 'the assertion id was already used', true);
    const nameId = typeof profile.nameID === 'string' ? profile.nameID : '';
    if (nameId.length === 0 || nameId.length > 1024) throw new SamlRefusal('subject', 'the assertion has no usable NameID');
    let email: string | null = null;
    for (const name of EMAIL_ATTRIBUTES) {
      const value = profile[name];
      const one = Array.isArray(value) ? value[0] : value;
      if (typeof one === 'string' && one.length > 0) {
        email = one;
        break;
      }
    }
    if (!email && profile.nameIDFormat === EMAIL_FORMAT) email = nameId;
    return { subject: nameId, email, inResponseTo };
  }

  /**
   * Our service-provider metadata for the connection, for the IdP's administrator to import: the
   * entity id (which is also this document's URL), the ACS of the HTTP-POST binding, that
   * assertions must be signed, and, when AuthnRequests are signed, the certificate to verify them
   * with. No encryption key: assertions are not encrypted.
   */
  const metadata = (conn: SamlConnection): Promise<string> => spMetadata(conn, client, signedMetadata);

  return { start, acs, metadata };
}

export type SamlProtocol = ReturnType<typeof createSamlProtocol>;
