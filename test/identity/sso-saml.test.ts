/**
 * Enterprise SSO with SAML 2.0 (AUTH-9, issue 8 item 6). The IdP is played by the test: a key pair
 * and a self-signed certificate made with openssl, published in IdP metadata, and Responses built
 * and signed here with xml-crypto, for the AuthnRequest Gatehouse really issued. Each attack is
 * named in its test with its exact refusal and a check that nothing was stored. Runs on PGlite and
 * memory kv, or on a scratch PostgreSQL database and Redis when DATABASE_URL / REDIS_URL are set.
 */
import { execFileSync } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, verify, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateRawSync } from 'node:zlib';
import type { LightMyRequestResponse } from 'fastify';
import { DOMParser } from '@xmldom/xmldom';
import { SignedXml } from 'xml-crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SSO_SAML_STATE_COOKIE } from '../../src/federation/state.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { suiteServices } from '../support/pg-scratch.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

const ORIGIN = 'https://gatehouse.test';
const IDP_ENTITY = 'https://idp.acme.example/saml';
const IDP_SSO = 'https://idp.acme.example/saml/sso';
const DOMAIN = 'corp.example';
const SKEW_SECONDS = 60;

interface KeyPair {
  key: string;
  cert: string;
}

let t: TestApp;
let services: Awaited<ReturnType<typeof suiteServices>> | undefined;
let idpKeys: KeyPair;
let otherKeys: KeyPair;
let owner: SignedInUser;
let orgId = '';
let connectionId = '';
let acsUrl = '';
let spEntityId = '';
let ipCounter = 0;
const freshIp = (): string => `203.0.113.${(ipCounter++ % 250) + 1}`;

function makeKeyPair(dir: string, name: string): KeyPair {
  const key = join(dir, `${name}.key`);
  const cert = join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-subj', `/CN=${name}`, '-days', '2'], { stdio: 'ignore' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

const certBody = (pem: string): string => pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');

function metadata(cert: string | null, extra = ''): string {
  const keyDescriptor = cert
    ? `<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>${certBody(cert)}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`
    : '';
  return `${extra}<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="${IDP_ENTITY}">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    ${keyDescriptor}
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="${IDP_SSO}"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`;
}


beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'gh-saml-'));
  try {
    idpKeys = makeKeyPair(dir, 'idp');
    otherKeys = makeKeyPair(dir, 'other');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  t = await createTestApp({ env: (services = await suiteServices()).env, overrides: { 'rateLimit.enabled': false, 'server.publicUrl': ORIGIN, 'sso.clockSkewSeconds': SKEW_SECONDS } });
  owner = await signUpUser(t.app, t.mail, `owner@${DOMAIN}`);
  const operator = await signUpUser(t.app, t.mail, 'operator@platform.example');
  await t.node.db.asOwner((tx) => tx.query('update users set is_operator = true where id = $1', [operator.userId]));
  orgId = (await t.app.inject({ method: 'POST', url: '/v1/orgs', headers: owner.auth, payload: { name: 'Corp' } })).json<{ id: string }>().id;
  const created = await t.app.inject({
    method: 'POST',
    url: `/v1/orgs/${orgId}/sso/connections`,
    headers: owner.auth,
    payload: { kind: 'saml', name: 'Corp SAML', defaultRole: 'viewer', metadataXml: metadata(idpKeys.cert) },
  });
  expect(created.statusCode).toBe(201);
  const conn = created.json<{ id: string; acsUrl: string; spEntityId: string }>();
  connectionId = conn.id;
  acsUrl = conn.acsUrl;
  spEntityId = conn.spEntityId;
  expect((await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/domains`, headers: owner.auth, payload: { domain: DOMAIN, connectionId } })).statusCode).toBe(201);
  expect((await t.app.inject({ method: 'POST', url: '/v1/admin/sso/domains/verify', headers: operator.auth, payload: { orgId, domain: DOMAIN } })).statusCode).toBe(200);
});

afterAll(async () => {
  await t?.close();
  await services?.drop();
});

// ---------- the IdP ----------

interface Started {
  requestId: string;
  cookie: string;
}

/** A browser starts a sign-in: the AuthnRequest id Gatehouse issued, and the state cookie it set. */
async function start(mode: 'bearer' | 'cookie' = 'bearer'): Promise<Started> {
  const res = await t.app.inject({ method: 'GET', url: `/v1/auth/sso/${connectionId}/start?mode=${mode}` });
  expect(res.statusCode).toBe(302);
  const location = new URL(String(res.headers.location));
  expect(location.origin + location.pathname).toBe(IDP_SSO);
  const request = inflateRawSync(Buffer.from(location.searchParams.get('SAMLRequest') ?? '', 'base64')).toString('utf8');
  const requestId = /\sID="([^"]+)"/.exec(request)?.[1] ?? '';
  expect(requestId).toMatch(/^_[0-9a-f]{40}$/);
  expect(request).toContain(`AssertionConsumerServiceURL="${acsUrl}"`);
  const cookie = res.cookies.find((c) => c.name === SSO_SAML_STATE_COOKIE);
  expect(cookie).toMatchObject({ httpOnly: true, secure: true, sameSite: 'None', path: '/' });
  return { requestId, cookie: cookie?.value ?? '' };
}

interface AssertionOptions {
  inResponseTo: string;
  email: string;
  nameId?: string;
  assertionId?: string;
  issuer?: string;
  audience?: string;
  recipient?: string;
  destination?: string;
  notBefore?: Date;
  notOnOrAfter?: Date;
}

const iso = (d: Date): string => d.toISOString();

function assertionXml(o: AssertionOptions): string {
  const now = Date.now();
  const notBefore = o.notBefore ?? new Date(now - 30_000);
  const notOnOrAfter = o.notOnOrAfter ?? new Date(now + 5 * 60_000);
  const id = o.assertionId ?? `_a${randomBytes(16).toString('hex')}`;
  return `<saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="${id}" Version="2.0" IssueInstant="${iso(new Date(now))}">
<saml:Issuer>${o.issuer ?? IDP_ENTITY}</saml:Issuer>
<saml:Subject>
<saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent">${o.nameId ?? `nid-${randomBytes(6).toString('hex')}`}</saml:NameID>
<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">
<saml:SubjectConfirmationData InResponseTo="${o.inResponseTo}" NotOnOrAfter="${iso(notOnOrAfter)}" Recipient="${o.recipient ?? acsUrl}"/>
</saml:SubjectConfirmation>
</saml:Subject>
<saml:Conditions NotBefore="${iso(notBefore)}" NotOnOrAfter="${iso(notOnOrAfter)}">
<saml:AudienceRestriction><saml:Audience>${o.audience ?? spEntityId}</saml:Audience></saml:AudienceRestriction>
</saml:Conditions>
<saml:AuthnStatement AuthnInstant="${iso(new Date(now))}" SessionIndex="_s1"><saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>
<saml:AttributeStatement><saml:Attribute Name="email"><saml:AttributeValue>${o.email}</saml:AttributeValue></saml:Attribute></saml:AttributeStatement>
</saml:Assertion>`;
}

function responseXml(inResponseTo: string, inner: string, destination = acsUrl): string {
  return `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_r${randomBytes(16).toString('hex')}" Version="2.0" IssueInstant="${iso(new Date())}" Destination="${destination}" InResponseTo="${inResponseTo}">
<saml:Issuer>${IDP_ENTITY}</saml:Issuer>
<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>
${inner}
</samlp:Response>`;
}

/** Signs the element `path` selects, enveloped, with the signature placed after its Issuer. */
function signElement(xml: string, keys: KeyPair, path: string): string {
  const sig = new SignedXml({
    privateKey: keys.key,
    publicCert: keys.cert,
    signatureAlgorithm: 'http://www.w3.org/2001/04/xmldsig-more#rsa-sha256',
    canonicalizationAlgorithm: 'http://www.w3.org/2001/10/xml-exc-c14n#',
  });
  sig.addReference({
    xpath: path,
    transforms: ['http://www.w3.org/2000/09/xmldsig#enveloped-signature', 'http://www.w3.org/2001/10/xml-exc-c14n#'],
    digestAlgorithm: 'http://www.w3.org/2001/04/xmlenc#sha256',
  });
  sig.computeSignature(xml, { location: { reference: `${path}/*[local-name(.)='Issuer']`, action: 'after' } });
  return sig.getSignedXml();
}

/** Signs the (single) Assertion of the document, enveloped, placed after its Issuer. */
const signAssertion = (xml: string, keys: KeyPair): string => signElement(xml, keys, "//*[local-name(.)='Assertion']");

/** Signs the whole Response as well (enveloped, after the Response's Issuer). */
const signResponse = (xml: string, keys: KeyPair): string => signElement(xml, keys, "/*[local-name(.)='Response']");

/** A Response with a signed assertion, as an honest IdP sends it. */
function signedResponse(o: AssertionOptions, keys = idpKeys, destination = acsUrl): string {
  return responseXml(o.inResponseTo, signAssertion(assertionXml(o), keys), destination);
}

async function post(xml: string, cookie: string | undefined): Promise<LightMyRequestResponse> {
  return t.app.inject({
    method: 'POST',
    url: `/v1/auth/sso/saml/${connectionId}/acs`,
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    payload: `SAMLResponse=${encodeURIComponent(Buffer.from(xml, 'utf8').toString('base64'))}&RelayState=`,
    remoteAddress: freshIp(),
    ...(cookie ? { cookies: { [SSO_SAML_STATE_COOKIE]: cookie } } : {}),
  });
}

function expectRefusal(res: LightMyRequestResponse, status: number, code: string): void {
  expect({ status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ status, code });
}

async function stored(email: string): Promise<{ users: number; links: number }> {
  return t.node.db.asOwner(async (tx) => ({
    users: (await tx.query('select 1 from users where email = $1', [email])).rowCount,
    links: (await tx.query('select 1 from sso_identities where email = $1', [email])).rowCount,
  }));
}

/** A refused response leaves no account and no link behind. */
async function expectRefusedAndNothingStored(res: LightMyRequestResponse, code: string, email: string, status = 400): Promise<void> {
  expectRefusal(res, status, code);
  expect(await stored(email)).toEqual({ users: 0, links: 0 });
}

const fresh = (): string => `u${randomBytes(5).toString('hex')}@${DOMAIN}`;

// ---------- tests ----------

describe('enterprise SSO with SAML: metadata', () => {
  it('reads entity id, SSO URL and signing certificate from the IdP metadata; the connection shows what to register at the IdP', async () => {
    // The real services are used when they are configured.
    expect({ db: t.node.db.kind, kv: t.node.kv.kind }).toEqual({ db: process.env.DATABASE_URL ? 'postgres' : 'pglite', kv: process.env.REDIS_URL ? 'redis' : 'memory' });
    const res = await t.app.inject({ url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth });
    expect(res.json()).toMatchObject({
      kind: 'saml',
      idpEntityId: IDP_ENTITY,
      idpSsoUrl: IDP_SSO,
      idpCertificates: [{ sha256: expect.stringMatching(/^[0-9a-f]{64}$/), notAfter: expect.any(String) }],
      spEntityId: `${ORIGIN}/v1/auth/sso/saml/${connectionId}`,
      acsUrl: `${ORIGIN}/v1/auth/sso/saml/${connectionId}/acs`,
      wantResponseSigned: false,
    });
  });

  it('serves our SP metadata at the SP entity id: entity id, HTTP-POST ACS, signed assertions wanted, no key', async () => {
    const res = await t.app.inject({ url: `/v1/auth/sso/saml/${connectionId}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/samlmetadata+xml; charset=utf-8');
    const doc = new DOMParser().parseFromString(res.body, 'text/xml');
    const md = 'urn:oasis:names:tc:SAML:2.0:metadata';
    const entity = doc.documentElement;
    expect({ ns: entity?.namespaceURI, name: entity?.localName, entityID: entity?.getAttribute('entityID') }).toEqual({ ns: md, name: 'EntityDescriptor', entityID: spEntityId });
    const sp = doc.getElementsByTagNameNS(md, 'SPSSODescriptor')[0];
    expect(sp?.getAttribute('WantAssertionsSigned')).toBe('true');
    expect(sp?.getAttribute('protocolSupportEnumeration')).toBe('urn:oasis:names:tc:SAML:2.0:protocol');
    const acs = [...Array.from(doc.getElementsByTagNameNS(md, 'AssertionConsumerService'))].map((e) => ({ binding: e.getAttribute('Binding'), location: e.getAttribute('Location') }));
    expect(acs).toEqual([{ binding: 'urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST', location: acsUrl }]);
    // Nothing to decrypt with or verify against: no KeyDescriptor, and no private material.
    expect(doc.getElementsByTagNameNS(md, 'KeyDescriptor').length).toBe(0);
    expect(res.body).not.toMatch(/PRIVATE KEY|X509Certificate/);
  });

  it('signed AuthnRequests: the SP key\'s certificate is shown and published, the start URL carries an RSA-SHA256 signature it verifies, and the private key is never shown nor stored in the clear', async () => {
    const created = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/sso/connections`,
      headers: owner.auth,
      payload: { kind: 'saml', name: 'Signed', defaultRole: 'viewer', metadataXml: metadata(idpKeys.cert), signRequests: true },
    });
    expect(created.statusCode).toBe(201);
    const conn = created.json<{ id: string; signRequests: boolean; spSigningCertificate: string; spEntityId: string }>();
    expect(conn.signRequests).toBe(true);
    const cert = new X509Certificate(conn.spSigningCertificate);
    expect(cert.subject).toBe(`CN=Gatehouse SAML SP ${conn.id}`);
    expect(cert.verify(cert.publicKey)).toBe(true);

    // The SP metadata publishes the certificate for signing and says requests are signed.
    const md = await t.app.inject({ url: `/v1/auth/sso/saml/${conn.id}` });
    const doc = new DOMParser().parseFromString(md.body, 'text/xml');
    const ns = 'urn:oasis:names:tc:SAML:2.0:metadata';
    expect(doc.getElementsByTagNameNS(ns, 'SPSSODescriptor')[0]?.getAttribute('AuthnRequestsSigned')).toBe('true');
    const keyDescriptors = Array.from(doc.getElementsByTagNameNS(ns, 'KeyDescriptor'));
    expect(keyDescriptors.map((k) => k.getAttribute('use'))).toEqual(['signing']);
    const published = doc.getElementsByTagNameNS('http://www.w3.org/2000/09/xmldsig#', 'X509Certificate')[0]?.textContent?.replace(/\s+/g, '');
    expect(published).toBe(cert.raw.toString('base64'));

    // HTTP-Redirect binding: the signature covers "SAMLRequest=…&SigAlg=…" as sent (RelayState too when present).
    const started = await t.app.inject({ url: `/v1/auth/sso/${conn.id}/start?mode=bearer` });
    expect(started.statusCode).toBe(302);
    const query = String(started.headers.location).split('?')[1] ?? '';
    const parts = new Map(query.split('&').map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)]));
    expect(decodeURIComponent(parts.get('SigAlg') ?? '')).toBe('http://www.w3.org/2001/04/xmldsig-more#rsa-sha256');
    const signed = ['SAMLRequest', 'RelayState', 'SigAlg'].filter((k) => parts.has(k)).map((k) => `${k}=${parts.get(k)}`).join('&');
    const signature = Buffer.from(decodeURIComponent(parts.get('Signature') ?? ''), 'base64');
    expect(verify('sha256', Buffer.from(signed), cert.publicKey, signature)).toBe(true);
    // The check above is a real one: another request under the same signature does not verify.
    expect(verify('sha256', Buffer.from(signed.replace('SAMLRequest=', 'SAMLRequest=x')), cert.publicKey, signature)).toBe(false);

    // The private key: in no answer, in no log line, only sealed in the database.
    const read = await t.app.inject({ url: `/v1/orgs/${orgId}/sso/connections/${conn.id}`, headers: owner.auth });
    for (const body of [created.body, read.body, md.body]) expect(body).not.toContain('PRIVATE KEY');
    expect(t.logText()).not.toContain('PRIVATE KEY');
    const dump = await t.node.db.asOwner((tx) => tx.query<{ j: string; sealed: string }>('select row_to_json(c)::text as j, saml_sp_key_sealed as sealed from sso_connections c where id = $1', [conn.id]));
    const sealed = dump.rows[0]?.sealed ?? '';
    expect(dump.rows[0]?.j).not.toContain('PRIVATE KEY');
    // What is sealed is the private key of the published certificate, under the org's data key.
    const opened = (await t.node.keyring.open({ tenantId: orgId }, { table: 'sso_connections', column: 'saml_sp_key_sealed', rowId: conn.id }, sealed)).toString('utf8');
    expect(createPrivateKey(opened).asymmetricKeyType).toBe('rsa');
    expect(sealed).not.toContain(opened.split('\n')[1] ?? 'unreachable');
    const publicOf = (key: KeyObject): string => key.export({ type: 'spki', format: 'der' }).toString('base64');
    expect(publicOf(createPublicKey(createPrivateKey(opened)))).toBe(publicOf(cert.publicKey));
  });

  it('signing turned on later makes the key once; turned off, requests go unsigned and the key stays; on again, the same certificate; not on an OIDC connection', async () => {
    const created = await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/connections`, headers: owner.auth, payload: { kind: 'saml', name: 'Later', defaultRole: 'viewer', metadataXml: metadata(idpKeys.cert) } });
    const id = created.json<{ id: string }>().id;
    expect(created.json()).toMatchObject({ signRequests: false, spSigningCertificate: null });
    const signedStart = async (): Promise<boolean> => new URL(String((await t.app.inject({ url: `/v1/auth/sso/${id}/start?mode=bearer` })).headers.location)).searchParams.has('Signature');
    expect(await signedStart()).toBe(false);
    const patch = (payload: Record<string, unknown>) => t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${id}`, headers: owner.auth, payload });
    const on = (await patch({ signRequests: true })).json<{ signRequests: boolean; spSigningCertificate: string }>();
    expect(on.signRequests).toBe(true);
    expect(await signedStart()).toBe(true);
    const off = (await patch({ signRequests: false })).json<{ signRequests: boolean; spSigningCertificate: string }>();
    expect(off).toMatchObject({ signRequests: false, spSigningCertificate: on.spSigningCertificate });
    expect(await signedStart()).toBe(false);
    expect((await patch({ signRequests: true })).json()).toMatchObject({ signRequests: true, spSigningCertificate: on.spSigningCertificate });

    const oidc = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/sso/connections`,
      headers: owner.auth,
      payload: { kind: 'oidc', name: 'No signing', defaultRole: 'viewer', issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's', scopes: ['openid', 'email'] },
    });
    const refused = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${oidc.json<{ id: string }>().id}`, headers: owner.auth, payload: { signRequests: true } });
    expect({ status: refused.statusCode, code: refused.json<{ error: { code: string } }>().error.code }).toEqual({ status: 400, code: 'VALIDATION_FAILED' });
  });

  it('attack: metadata for an unknown, malformed, disabled or OIDC connection is refused with SSO_CONNECTION_UNKNOWN', async () => {
    const unknown = async (url: string): Promise<void> => {
      const res = await t.app.inject({ url });
      expect({ url, status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ url, status: 404, code: 'SSO_CONNECTION_UNKNOWN' });
    };
    await unknown('/v1/auth/sso/saml/00000000-0000-4000-8000-000000000000');
    await unknown('/v1/auth/sso/saml/not-a-connection');
    const oidc = await t.app.inject({
      method: 'POST',
      url: `/v1/orgs/${orgId}/sso/connections`,
      headers: owner.auth,
      payload: { kind: 'oidc', name: 'Other', defaultRole: 'viewer', issuer: 'https://idp.example.com', clientId: 'c', clientSecret: 's', scopes: ['openid', 'email'] },
    });
    expect(oidc.statusCode).toBe(201);
    await unknown(`/v1/auth/sso/saml/${oidc.json<{ id: string }>().id}`);
    const off = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { enabled: false } });
    expect(off.statusCode).toBe(200);
    try {
      await unknown(`/v1/auth/sso/saml/${connectionId}`);
    } finally {
      await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { enabled: true } });
    }
  });

  it('refuses metadata without a signing certificate, with a DOCTYPE (entity expansion), or that is not metadata: SSO_METADATA_INVALID, nothing stored', async () => {
    const before = (await t.node.db.asOwner((tx) => tx.query('select 1 from sso_connections'))).rowCount;
    for (const metadataXml of [metadata(null), metadata(idpKeys.cert, '<!DOCTYPE x [<!ENTITY e "boom">]>'), '<html>not metadata</html>', 'not xml at all <']) {
      const res = await t.app.inject({ method: 'POST', url: `/v1/orgs/${orgId}/sso/connections`, headers: owner.auth, payload: { kind: 'saml', name: 'Bad', defaultRole: 'viewer', metadataXml } });
      expectRefusal(res, 400, 'SSO_METADATA_INVALID');
    }
    expect((await t.node.db.asOwner((tx) => tx.query('select 1 from sso_connections'))).rowCount).toBe(before);
  });

  it('attack: an OIDC issuer aimed at the server\'s own or private network (SSRF through discovery), or over plain HTTP, is refused with VALIDATION_FAILED', async () => {
    const before = (await t.node.db.asOwner((tx) => tx.query('select 1 from sso_connections'))).rowCount;
    for (const issuer of ['https://127.0.0.1/', 'https://localhost:8443', 'https://10.0.0.5/idp', 'https://169.254.169.254/latest', 'https://[::1]/', 'https://[::ffff:192.168.1.1]/', 'http://idp.corp.example', 'https://user:pw@idp.corp.example']) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/v1/orgs/${orgId}/sso/connections`,
        headers: owner.auth,
        payload: { kind: 'oidc', name: 'Internal', defaultRole: 'viewer', issuer, clientId: 'c', clientSecret: 's' },
      });
      expect({ issuer, status: res.statusCode, code: res.json<{ error?: { code?: string } }>().error?.code }).toEqual({ issuer, status: 400, code: 'VALIDATION_FAILED' });
    }
    expect((await t.node.db.asOwner((tx) => tx.query('select 1 from sso_connections'))).rowCount).toBe(before);
  });

  it('a form body is accepted by the ACS only; any other route still answers 415', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/sso/discover', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `email=a%40${DOMAIN}` });
    expectRefusal(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('enterprise SSO with SAML: sign-in', () => {
  it('a signed assertion for our request provisions the user just in time: verified account, member with the default role, tokens issued', async () => {
    const email = fresh();
    const s = await start();
    const res = await post(signedResponse({ inResponseTo: s.requestId, email, nameId: 'employee-42' }), s.cookie);
    expect(res.statusCode).toBe(200);
    const body = res.json<{ tokenType: string; accessToken: string; refreshToken: string }>();
    expect(body).toMatchObject({ tokenType: 'Bearer', accessToken: expect.any(String), refreshToken: expect.any(String) });
    const auth = { authorization: `Bearer ${body.accessToken}` };
    expect((await t.app.inject({ url: '/v1/me', headers: auth })).json()).toMatchObject({ email, emailVerified: true });
    const orgs = (await t.app.inject({ url: '/v1/orgs', headers: auth })).json<{ orgs: { id: string; role: string }[] }>().orgs;
    expect(orgs).toEqual([expect.objectContaining({ id: orgId, role: 'viewer' })]);
    expect(await stored(email)).toEqual({ users: 1, links: 1 });
    const events = await t.node.db.asOwner((tx) => tx.query<{ action: string }>("select action from audit_events where tenant_id = $1 and action like 'sso.%' order by seq", [orgId]));
    expect(events.rows.map((r) => r.action)).toEqual(expect.arrayContaining(['sso.user.provisioned', 'sso.login']));
  });

  it('an assertion expired by less than the configured clock skew is still accepted', async () => {
    const s = await start();
    const res = await post(signedResponse({ inResponseTo: s.requestId, email: fresh(), notOnOrAfter: new Date(Date.now() - (SKEW_SECONDS / 2) * 1000) }), s.cookie);
    expect(res.statusCode).toBe(200);
  });

  it('attack: an unsigned assertion is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    await expectRefusedAndNothingStored(await post(responseXml(s.requestId, assertionXml({ inResponseTo: s.requestId, email })), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an assertion signed by another key is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email }, otherKeys), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: a signed assertion altered after signing (email swapped) is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    const tampered = signedResponse({ inResponseTo: s.requestId, email: fresh() }).replace(/<saml:AttributeValue>[^<]+</, `<saml:AttributeValue>${email}<`);
    await expectRefusedAndNothingStored(await post(tampered, s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: XML signature wrapping with an injected unsigned assertion next to the signed one is refused with SSO_ASSERTION_INVALID', async () => {
    const victim = fresh();
    for (const evilFirst of [true, false]) {
      // A fresh request each time: a refused response also spends the request it answered.
      const s = await start();
      const signed = signAssertion(assertionXml({ inResponseTo: s.requestId, email: fresh() }), idpKeys);
      const evil = assertionXml({ inResponseTo: s.requestId, email: victim });
      const inner = evilFirst ? `${evil}\n${signed}` : `${signed}\n${evil}`;
      await expectRefusedAndNothingStored(await post(responseXml(s.requestId, inner), s.cookie), 'SSO_ASSERTION_INVALID', victim);
    }
  });

  it('attack: XML signature wrapping with the signed assertion moved into an extension and an unsigned one in its place is refused with SSO_ASSERTION_INVALID', async () => {
    const victim = fresh();
    const s = await start();
    const signed = signAssertion(assertionXml({ inResponseTo: s.requestId, email: fresh() }), idpKeys);
    const evil = assertionXml({ inResponseTo: s.requestId, email: victim });
    // The signed element hidden in Extensions, where the signature still "verifies" by its ID.
    const moved = responseXml(s.requestId, `<samlp:Extensions>${signed}</samlp:Extensions>\n${evil}`);
    await expectRefusedAndNothingStored(await post(moved, s.cookie), 'SSO_ASSERTION_INVALID', victim);
    // The signed assertion nested inside the evil one, so a by-ID reference still finds it.
    const s2 = await start();
    const signed2 = signAssertion(assertionXml({ inResponseTo: s2.requestId, email: fresh() }), idpKeys);
    const signedId = /ID="([^"]+)"/.exec(signed2)?.[1] ?? '';
    const nested = responseXml(
      s2.requestId,
      assertionXml({ inResponseTo: s2.requestId, email: victim, assertionId: signedId }).replace('</saml:Assertion>', `<saml:Advice>${signed2}</saml:Advice></saml:Assertion>`),
    );
    await expectRefusedAndNothingStored(await post(nested, s2.cookie), 'SSO_ASSERTION_INVALID', victim);
  });

  it('attack: an expired assertion (NotOnOrAfter past beyond the skew) is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    const old = new Date(Date.now() - (SKEW_SECONDS + 30) * 1000);
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email, notOnOrAfter: old, notBefore: new Date(old.getTime() - 300_000) }), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an assertion not yet valid (NotBefore beyond the skew) is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    const later = new Date(Date.now() + (SKEW_SECONDS + 60) * 1000);
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email, notBefore: later, notOnOrAfter: new Date(later.getTime() + 300_000) }), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an assertion for another audience (another SP) is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email, audience: 'https://other-sp.example/saml' }), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an assertion for another recipient, or a Response for another destination, is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s1 = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s1.requestId, email, recipient: 'https://other-sp.example/acs' }), s1.cookie), 'SSO_ASSERTION_INVALID', email);
    const s2 = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s2.requestId, email }, idpKeys, 'https://other-sp.example/acs'), s2.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an assertion from another issuer signed with the trusted key is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email, issuer: 'https://evil-idp.example' }), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: an unknown InResponseTo (unsolicited or forged request id) is refused with SSO_ASSERTION_INVALID', async () => {
    const email = fresh();
    const s = await start();
    const forged = `_${randomBytes(20).toString('hex')}`;
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: forged, email }), s.cookie), 'SSO_ASSERTION_INVALID', email);
  });

  it('attack: a response posted without the state cookie of the browser that started the sign-in (login CSRF) is refused with SSO_STATE_INVALID', async () => {
    const email = fresh();
    const s = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email }), undefined), 'SSO_STATE_INVALID', email);
    // Another browser's cookie (another request id) is no better.
    const other = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email }), other.cookie), 'SSO_STATE_INVALID', email);
  });

  it('attack: a replayed response is refused: the same post again with SSO_ASSERTION_INVALID (request answered), its assertion id under a fresh request with SSO_ASSERTION_REPLAYED', async () => {
    const email = fresh();
    const s = await start();
    const assertionId = `_a${randomBytes(16).toString('hex')}`;
    const xml = signedResponse({ inResponseTo: s.requestId, email, assertionId, nameId: 'replayed-subject' });
    expect((await post(xml, s.cookie)).statusCode).toBe(200);
    const before = await stored(email);
    expectRefusal(await post(xml, s.cookie), 400, 'SSO_ASSERTION_INVALID');
    // The IdP (or a thief) sends the same assertion id again, for a request that is still open.
    const s2 = await start();
    expectRefusal(await post(signedResponse({ inResponseTo: s2.requestId, email, assertionId, nameId: 'replayed-subject' }), s2.cookie), 400, 'SSO_ASSERTION_REPLAYED');
    expect(await stored(email)).toEqual(before);
    const sessions = await t.node.db.asOwner((tx) => tx.query('select 1 from sessions s join users u on u.id = s.user_id where u.email = $1', [email]));
    expect(sessions.rowCount).toBe(1);
  });

  it('attack: with wantResponseSigned, a Response whose assertion alone is signed, or whose Response signature is another key\'s, is refused with SSO_ASSERTION_INVALID; both signed is accepted', async () => {
    const on = await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { wantResponseSigned: true } });
    expect(on.json()).toMatchObject({ wantResponseSigned: true });
    try {
      const email = fresh();
      const s1 = await start();
      await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s1.requestId, email }), s1.cookie), 'SSO_ASSERTION_INVALID', email);
      const s2 = await start();
      await expectRefusedAndNothingStored(await post(signResponse(signedResponse({ inResponseTo: s2.requestId, email }), otherKeys), s2.cookie), 'SSO_ASSERTION_INVALID', email);
      const s3 = await start();
      const ok = await post(signResponse(signedResponse({ inResponseTo: s3.requestId, email }), idpKeys), s3.cookie);
      expect(ok.statusCode).toBe(200);
      expect(await stored(email)).toEqual({ users: 1, links: 1 });
    } finally {
      await t.app.inject({ method: 'PATCH', url: `/v1/orgs/${orgId}/sso/connections/${connectionId}`, headers: owner.auth, payload: { wantResponseSigned: false } });
    }
  });

  it('attack: an email outside the org\'s verified domains is refused with SSO_EMAIL_NOT_ALLOWED', async () => {
    const email = `someone${randomBytes(3).toString('hex')}@elsewhere.example`;
    const s = await start();
    await expectRefusedAndNothingStored(await post(signedResponse({ inResponseTo: s.requestId, email }), s.cookie), 'SSO_EMAIL_NOT_ALLOWED', email, 403);
  });
});
