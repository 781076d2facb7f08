/**
 * Enterprise SSO per org (AUTH-9): connections (OIDC or SAML), email domains, the "SSO required"
 * setting, sign-in routing by verified domain, and the end of every SSO sign-in: the asserted email
 * must be in one of the org's verified domains; a user linked by (connection, subject) signs in; an
 * existing account with that email is linked; a new one is created (the IdP vouched for the email
 * in a domain the org proved it holds) and joins the org with the connection's default role.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import type { Logger } from 'pino';
import type { AuditLog } from '../../audit/index.ts';
import { createAddressCheck } from '../../net/egress.ts';
import type { Keyring } from '../../keyring/keyring.ts';
import { AppError } from '../../server/errors.ts';
import type { Db, Queryable } from '../../store/db-types.ts';
import { canGrant, isRole, type Role } from '../../tenancy/index.ts';
import { normalizeEmail, type Accounts, type SecondFactorRequired, type SignedIn } from '../accounts.ts';
import type { SessionContext } from '../sessions.ts';
import { redirectUriOf, type OidcConnection, type OidcProtocol, OidcRefusal } from './oidc.ts';
import { acsUrlOf, createSpSigningKey, parseIdpMetadata, pemToDer, SamlRefusal, spEntityIdOf, type SamlConnection, type SamlProtocol } from './saml.ts';
import { SSO_OIDC_STATE_COOKIE, SSO_SAML_STATE_COOKIE, type StateSigner } from './state.ts';

export const SSO_SEALED_COLUMNS = [
  { table: 'sso_connections', column: 'oidc_client_secret_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
  { table: 'sso_connections', column: 'saml_sp_key_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
] as const;

const CONNECTION_SETTING = 'gatehouse.sso_connection_id';
const DOMAIN_SETTING = 'gatehouse.sso_domain';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// eslint-disable-next-line security/detect-unsafe-regex -- labels are bounded and input is capped at 253 first
const DOMAIN_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/;

type Mode = 'bearer' | 'cookie';
type DefaultRole = 'admin' | 'editor' | 'viewer';

interface ConnectionRow {
  id: string;
  tenant_id: string;
  kind: 'oidc' | 'saml';
  name: string;
  default_role: DefaultRole;
  enabled: boolean;
  oidc_issuer: string | null;
  oidc_client_id: string | null;
  oidc_client_secret_sealed: string | null;
  oidc_scopes: string[] | null;
  saml_idp_entity_id: string | null;
  saml_sso_url: string | null;
  saml_idp_certs: string[] | null;
  saml_want_response_signed: boolean;
  saml_sign_requests: boolean;
  saml_sp_key_sealed: string | null;
  saml_sp_cert: string | null;
  created_at: Date | string;
  updated_at: Date | string;
}

const COLUMNS =
  'id, tenant_id, kind, name, default_role, enabled, oidc_issuer, oidc_client_id, oidc_client_secret_sealed, oidc_scopes, saml_idp_entity_id, saml_sso_url, saml_idp_certs, saml_want_response_signed, saml_sign_requests, saml_sp_key_sealed, saml_sp_cert, created_at, updated_at';

export interface ConnectionView {
  id: string;
  kind: 'oidc' | 'saml';
  name: string;
  defaultRole: DefaultRole;
  enabled: boolean;
  /** Where a browser starts a sign-in with this connection. */
  startUrl: string;
  issuer: string | null;
  clientId: string | null;
  scopes: string[] | null;
  /** The redirect URI to register at the OIDC IdP. */
  redirectUri: string | null;
  idpEntityId: string | null;
  idpSsoUrl: string | null;
  idpCertificates: { sha256: string; notAfter: string | null }[] | null;
  wantResponseSigned: boolean | null;
  /** Our SP entity id (the audience) and ACS URL, to register at the SAML IdP. */
  spEntityId: string | null;
  acsUrl: string | null;
  /** SAML: whether AuthnRequests are signed, and the certificate (PEM) the IdP verifies them with. */
  signRequests: boolean | null;
  spSigningCertificate: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface DomainView {
  id: string;
  domain: string;
  connectionId: string;
  verified: boolean;
  verifiedAt: string | null;
  createdAt: string;
}

export type NewConnection =
  | { kind: 'oidc'; name: string; defaultRole: DefaultRole; issuer: string; clientId: string; clientSecret: string; scopes?: string[] | undefined }
  | { kind: 'saml'; name: string; defaultRole: DefaultRole; metadataXml: string; wantResponseSigned?: boolean | undefined; signRequests?: boolean | undefined };

export interface ConnectionChanges {
  name?: string | undefined;
  defaultRole?: DefaultRole | undefined;
  enabled?: boolean | undefined;
  clientId?: string | undefined;
  clientSecret?: string | undefined;
  scopes?: string[] | undefined;
  metadataXml?: string | undefined;
  wantResponseSigned?: boolean | undefined;
  signRequests?: boolean | undefined;
}

const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

/** A domain as an org claims it: lowercase ASCII (IDNA), no trailing dot, at least two labels. */
export function normalizeDomain(raw: string): string {
  const trimmed = raw.normalize('NFKC').trim().toLowerCase().replace(/\.$/, '');
  let ascii: string;
  try {
    if (!/^[^/:@?#\s[\]\\]+$/.test(trimmed)) throw new Error('not a host');
    ascii = new URL(`http://${trimmed}`).hostname;
  } catch {
    throw new AppError('VALIDATION_FAILED', 'body.domain: not a domain name');
  }
  if (ascii.length > 253 || !DOMAIN_RE.test(ascii) || /^[0-9.]+$/.test(ascii)) throw new AppError('VALIDATION_FAILED', 'body.domain: not a domain name');
  return ascii;
}

// The shared egress rules (net/egress): loopback, private, link-local, CGNAT, documentation, multicast and
// reserved ranges, IPv4-mapped IPv6 judged on its IPv4 address.
const publicAddress = createAddressCheck([]);

/** A host name that is localhost or an IP literal outside the public address space. */
export function isInternalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isIP(host) !== 0 && !publicAddress(host);
}

function certificateInfo(pem: string): { sha256: string; notAfter: string | null } {
  const der = pemToDer(pem);
  let notAfter: string | null;
  try {
    notAfter = new Date(new X509Certificate(der).validTo).toISOString();
  } catch {
    // Not a certificate this runtime reads: shown by its fingerprint only.
    notAfter = null;
  }
  return { sha256: createHash('sha256').update(der).digest('hex'), notAfter };
}

export interface SsoDeps {
  db: Db;
  keyring: Keyring;
  audit: AuditLog;
  accounts: Accounts;
  oidc: OidcProtocol;
  saml: SamlProtocol;
  signer: StateSigner;
  logger: Logger;
  now: () => number;
  publicOrigin: string;
  stateTtlMs: number;
  allowInsecureUrls: boolean;
  /** Evicts cached authority of an org on every node (a member was added). */
  evictOrg: (orgId: string) => Promise<void>;
}

export function createSso(deps: SsoDeps) {
  const { db, keyring, audit, accounts, logger, now, publicOrigin } = deps;

  const sealRef = (id: string) => ({ table: 'sso_connections', column: 'oidc_client_secret_sealed', rowId: id });
  const spKeyRef = (id: string) => ({ table: 'sso_connections', column: 'saml_sp_key_sealed', rowId: id });

  /** A new SP signing key for a SAML connection: the private key sealed with the org's data key, the certificate. */
  async function newSpKey(orgId: string, id: string): Promise<{ sealed: string; certificate: string }> {
    const { privateKeyPem, certificatePem } = await createSpSigningKey(id, new Date(now()));
    return { sealed: await keyring.seal({ tenantId: orgId }, spKeyRef(id), privateKeyPem), certificate: certificatePem };
  }
  const startPathOf = (id: string): string => `/v1/auth/sso/${id}/start`;

  function view(r: ConnectionRow): ConnectionView {
    const saml = r.kind === 'saml';
    return {
      id: r.id,
      kind: r.kind,
      name: r.name,
      defaultRole: r.default_role,
      enabled: r.enabled,
      startUrl: `${publicOrigin}${startPathOf(r.id)}`,
      issuer: r.oidc_issuer,
      clientId: r.oidc_client_id,
      scopes: r.oidc_scopes,
      redirectUri: saml ? null : redirectUriOf(publicOrigin, r.id),
      idpEntityId: r.saml_idp_entity_id,
      idpSsoUrl: r.saml_sso_url,
      idpCertificates: r.saml_idp_certs ? r.saml_idp_certs.map(certificateInfo) : null,
      wantResponseSigned: saml ? r.saml_want_response_signed : null,
      spEntityId: saml ? spEntityIdOf(publicOrigin, r.id) : null,
      acsUrl: saml ? acsUrlOf(publicOrigin, r.id) : null,
      signRequests: saml ? r.saml_sign_requests : null,
      spSigningCertificate: saml ? r.saml_sp_cert : null,
      createdAt: iso(r.created_at),
      updatedAt: iso(r.updated_at),
    };
  }

  function checkIssuer(issuer: string): string {
    let url: URL;
    try {
      url = new URL(issuer);
    } catch {
      throw new AppError('VALIDATION_FAILED', 'body.issuer: not a URL');
    }
    if (!(url.protocol === 'https:' || (deps.allowInsecureUrls && url.protocol === 'http:')) || url.username || url.password || url.search || url.hash) {
      throw new AppError('VALIDATION_FAILED', 'body.issuer: an https URL without credentials, query or fragment');
    }
    // Discovery is fetched by the server: an org admin may not aim it at the host's own or private
    // network by address (a local test IdP needs sso.allowInsecureRequests).
    if (!deps.allowInsecureUrls && isInternalHost(url.hostname)) throw new AppError('VALIDATION_FAILED', 'body.issuer: a loopback, private or link-local address is not accepted');
    // Kept as given: discovery compares the IdP's issuer with it exactly (some end with a slash).
    return issuer;
  }

  function checkRole(actor: Role, role: DefaultRole): void {
    // An admin cannot make a connection hand out a role above their own.
    if (!canGrant(actor, role)) throw new AppError('ROLE_ABOVE_OWN');
  }

  async function connectionIn(tx: Queryable, id: string): Promise<ConnectionRow> {
    const row = (await tx.query<ConnectionRow>(`select ${COLUMNS} from sso_connections where id = $1`, [id])).rows[0];
    if (!row) throw new AppError('NOT_FOUND', 'No such SSO connection.');
    return row;
  }

  // ---------- connections (org admins) ----------

  async function listConnections(orgId: string): Promise<ConnectionView[]> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<ConnectionRow>(`select ${COLUMNS} from sso_connections order by created_at, id`));
    return rows.map(view);
  }

  async function getConnection(orgId: string, id: string): Promise<ConnectionView> {
    return view(await db.withTenant(orgId, (tx) => connectionIn(tx, id)));
  }

  async function createConnection(orgId: string, actorId: string, actorRole: Role, input: NewConnection): Promise<ConnectionView> {
    checkRole(actorRole, input.defaultRole);
    const id = randomUUID();
    let values: unknown[];
    if (input.kind === 'oidc') {
      const scopes = input.scopes ?? ['openid', 'email', 'profile'];
      if (!scopes.includes('openid')) throw new AppError('VALIDATION_FAILED', 'body.scopes: must include openid');
      const sealed = await keyring.seal({ tenantId: orgId }, sealRef(id), input.clientSecret);
      values = [checkIssuer(input.issuer), input.clientId, sealed, scopes, null, null, null, false, false, null, null];
    } else {
      const md = parseIdpMetadata(input.metadataXml, { allowInsecureUrls: deps.allowInsecureUrls });
      const key = input.signRequests === true ? await newSpKey(orgId, id) : null;
      values = [null, null, null, null, md.entityId, md.ssoUrl, md.certificates, input.wantResponseSigned ?? false, key !== null, key?.sealed ?? null, key?.certificate ?? null];
    }
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.connection.created', target: { type: 'sso_connection', id }, data: { kind: input.kind, defaultRole: input.defaultRole } });
    const row = await db.withTenant(orgId, async (tx) => {
      const inserted = await tx.query<ConnectionRow>(
        `insert into sso_connections (id, tenant_id, kind, name, default_role, oidc_issuer, oidc_client_id, oidc_client_secret_sealed, oidc_scopes,
                                      saml_idp_entity_id, saml_sso_url, saml_idp_certs, saml_want_response_signed,
                                      saml_sign_requests, saml_sp_key_sealed, saml_sp_cert, created_by)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) returning ${COLUMNS}`,
        [id, orgId, input.kind, input.name, input.defaultRole, ...values, actorId],
      );
      await audit.append(tx, event);
      return inserted.rows[0];
    });
    if (!row) throw new AppError('INTERNAL');
    return view(row);
  }

  async function updateConnection(orgId: string, actorRole: Role, id: string, changes: ConnectionChanges): Promise<ConnectionView> {
    if (changes.defaultRole) checkRole(actorRole, changes.defaultRole);
    const current = await db.withTenant(orgId, (tx) => connectionIn(tx, id));
    const oidcOnly = changes.clientId !== undefined || changes.clientSecret !== undefined || changes.scopes !== undefined;
    const samlOnly = changes.metadataXml !== undefined || changes.wantResponseSigned !== undefined || changes.signRequests !== undefined;
    if ((current.kind === 'saml' && oidcOnly) || (current.kind === 'oidc' && samlOnly)) {
      throw new AppError('VALIDATION_FAILED', `body: a field that does not apply to a ${current.kind} connection`);
    }
    if (changes.scopes && !changes.scopes.includes('openid')) throw new AppError('VALIDATION_FAILED', 'body.scopes: must include openid');
    const sealed = changes.clientSecret !== undefined ? await keyring.seal({ tenantId: orgId }, sealRef(id), changes.clientSecret) : null;
    const md = changes.metadataXml !== undefined ? parseIdpMetadata(changes.metadataXml, { allowInsecureUrls: deps.allowInsecureUrls }) : null;
    // The first time signing is turned on, the connection gets its key; turned off and on again, it keeps it.
    const spKey = changes.signRequests === true && current.saml_sp_key_sealed === null ? await newSpKey(orgId, id) : null;
    const event = await audit.prepare({
      tenantId: orgId,
      action: 'sso.connection.updated',
      target: { type: 'sso_connection', id },
      // What changed, never a value of the secret.
      data: {
        fields: Object.entries(changes)
          .filter(([, v]) => v !== undefined)
          .map(([k]) => k)
          .sort()
          .join(','),
      },
    });
    const row = await db.withTenant(orgId, async (tx) => {
      const updated = await tx.query<ConnectionRow>(
        `update sso_connections set
            name = coalesce($2, name), default_role = coalesce($3, default_role), enabled = coalesce($4, enabled),
            oidc_client_id = coalesce($5, oidc_client_id), oidc_client_secret_sealed = coalesce($6, oidc_client_secret_sealed), oidc_scopes = coalesce($7, oidc_scopes),
            saml_idp_entity_id = coalesce($8, saml_idp_entity_id), saml_sso_url = coalesce($9, saml_sso_url), saml_idp_certs = coalesce($10, saml_idp_certs),
            saml_want_response_signed = coalesce($11, saml_want_response_signed),
            saml_sign_requests = coalesce($12, saml_sign_requests),
            saml_sp_key_sealed = coalesce(saml_sp_key_sealed, $13), saml_sp_cert = coalesce(saml_sp_cert, $14), updated_at = now()
          where id = $1 returning ${COLUMNS}`,
        [
          id,
          changes.name ?? null,
          changes.defaultRole ?? null,
          changes.enabled ?? null,
          changes.clientId ?? null,
          sealed,
          changes.scopes ?? null,
          md?.entityId ?? null,
          md?.ssoUrl ?? null,
          md?.certificates ?? null,
          changes.wantResponseSigned ?? null,
          changes.signRequests ?? null,
          spKey?.sealed ?? null,
          spKey?.certificate ?? null,
        ],
      );
      if (updated.rowCount > 0) await audit.append(tx, event);
      return updated.rows[0];
    });
    if (!row) throw new AppError('NOT_FOUND', 'No such SSO connection.');
    return view(row);
  }

  async function deleteConnection(orgId: string, id: string): Promise<void> {
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.connection.deleted', target: { type: 'sso_connection', id } });
    await db.withTenant(orgId, async (tx) => {
      // Its domains and links go with it (foreign keys).
      const deleted = await tx.query('delete from sso_connections where id = $1', [id]);
      if (deleted.rowCount === 0) throw new AppError('NOT_FOUND', 'No such SSO connection.');
      // Without an enabled connection left, "SSO required" would send members nowhere.
      const left = await tx.query("select 1 from sso_connections where enabled limit 1");
      if (left.rowCount === 0) await tx.query('update orgs set sso_required = false, updated_at = now() where sso_required');
      await audit.append(tx, event);
    });
  }

  // ---------- domains ----------

  const domainView = (r: { id: string; domain: string; connection_id: string; verified_at: Date | string | null; created_at: Date | string }): DomainView => ({
    id: r.id,
    domain: r.domain,
    connectionId: r.connection_id,
    verified: r.verified_at !== null,
    verifiedAt: isoOrNull(r.verified_at),
    createdAt: iso(r.created_at),
  });

  async function listDomains(orgId: string): Promise<DomainView[]> {
    const { rows } = await db.withTenant(orgId, (tx) =>
      tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>('select id, domain, connection_id, verified_at, created_at from sso_domains order by domain'),
    );
    return rows.map(domainView);
  }

  async function claimDomain(orgId: string, rawDomain: string, connectionId: string): Promise<DomainView> {
    const domain = normalizeDomain(rawDomain);
    const id = randomUUID();
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.claimed', target: { type: 'sso_domain', id }, data: { domain, connection: connectionId } });
    return db.withTenant(orgId, async (tx) => {
      await connectionIn(tx, connectionId);
      const exists = await tx.query('select 1 from sso_domains where domain = $1', [domain]);
      if (exists.rowCount > 0) throw new AppError('SSO_DOMAIN_EXISTS');
      const inserted = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
        'insert into sso_domains (id, tenant_id, connection_id, domain) values ($1, $2, $3, $4) returning id, domain, connection_id, verified_at, created_at',
        [id, orgId, connectionId, domain],
      );
      await audit.append(tx, event);
      const row = inserted.rows[0];
      if (!row) throw new AppError('INTERNAL');
      return domainView(row);
    });
  }

  async function removeDomain(orgId: string, id: string): Promise<void> {
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.removed', target: { type: 'sso_domain', id } });
    await db.withTenant(orgId, async (tx) => {
      const deleted = await tx.query('delete from sso_domains where id = $1', [id]);
      if (deleted.rowCount === 0) throw new AppError('NOT_FOUND', 'No such domain.');
      await audit.append(tx, event);
    });
  }

  /**
   * The platform operator, having checked out of band that the org holds the domain (DNS record,
   * contract), marks its claim verified. One org at most per verified domain.
   */
  async function verifyDomain(operatorId: string, orgId: string, rawDomain: string): Promise<DomainView> {
    const domain = normalizeDomain(rawDomain);
    if (!UUID.test(orgId)) throw new AppError('NOT_FOUND', 'No such domain claim.');
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.domain.verified', target: { type: 'sso_domain', id: domain }, data: { domain } });
    try {
      return await db.withTenant(orgId, async (tx) => {
        const claim = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
          'select id, domain, connection_id, verified_at, created_at from sso_domains where domain = $1 for update',
          [domain],
        );
        const row = claim.rows[0];
        if (!row) throw new AppError('NOT_FOUND', 'No such domain claim.');
        if (row.verified_at !== null) return domainView(row);
        const updated = await tx.query<{ id: string; domain: string; connection_id: string; verified_at: Date | null; created_at: Date }>(
          'update sso_domains set verified_at = $2, verified_by = $3 where id = $1 returning id, domain, connection_id, verified_at, created_at',
          [row.id, new Date(now()), operatorId],
        );
        await audit.append(tx, event);
        const out = updated.rows[0];
        if (!out) throw new AppError('INTERNAL');
        return domainView(out);
      });
    } catch (err) {
      if ((err as { code?: string }).code === '23505') throw new AppError('SSO_DOMAIN_TAKEN');
      throw err;
    }
  }

  // ---------- the org setting ----------

  async function getSettings(orgId: string): Promise<{ ssoRequired: boolean }> {
    const { rows } = await db.withTenant(orgId, (tx) => tx.query<{ sso_required: boolean }>('select sso_required from orgs'));
    if (!rows[0]) throw new AppError('NOT_FOUND');
    return { ssoRequired: rows[0].sso_required };
  }

  async function setSettings(orgId: string, ssoRequired: boolean): Promise<{ ssoRequired: boolean }> {
    const event = await audit.prepare({ tenantId: orgId, action: 'sso.settings.changed', target: { type: 'org', id: orgId }, data: { ssoRequired } });
    await db.withTenant(orgId, async (tx) => {
      if (ssoRequired) {
        const ready = await tx.query('select 1 from sso_connections c where c.enabled and exists (select 1 from sso_domains d where d.connection_id = c.id and d.verified_at is not null) limit 1');
        if (ready.rowCount === 0) throw new AppError('SSO_NOT_READY');
      }
      await tx.query('update orgs set sso_required = $1, updated_at = now()', [ssoRequired]);
      await audit.append(tx, event);
    });
    return { ssoRequired };
  }

  /**
   * The sign-in policy registered with accounts: a member of an org that requires SSO, other than
   * its owners (the break-glass: an owner can always sign in with their password and second
   * factor, to repair a broken IdP setup), signs in only through SSO.
   */
  async function enforceSsoRequired(userId: string, method: string): Promise<void> {
    if (method.startsWith('sso:')) return;
    const { rows } = await db.withUser(userId, (tx) =>
      tx.query<{ tenant_id: string; role: string }>(
        `select m.tenant_id, m.role from memberships m join orgs o on o.tenant_id = m.tenant_id
          where m.user_id = $1 and o.sso_required and m.role <> 'owner' order by o.created_at, o.tenant_id limit 1`,
        [userId],
      ),
    );
    const org = rows[0];
    if (!org) return;
    const conn = (await db.withTenant(org.tenant_id, (tx) => tx.query<{ id: string }>('select id from sso_connections where enabled order by created_at, id limit 1'))).rows[0];
    await audit.record({ tenantId: org.tenant_id, action: 'sso.failed', target: { type: 'user', id: userId }, data: { reason: 'sso-required', method } });
    const path = conn ? startPathOf(conn.id) : '/v1/auth/sso/discover';
    throw new AppError('SSO_REQUIRED', `Your organization requires single sign-on: sign in at ${path}.`, { headers: { link: `<${publicOrigin}${path}>; rel="sso"` } });
  }

  /** Removes a deleted account's links in every org. */
  async function forgetUser(userId: string): Promise<void> {
    const { rows } = await db.withUser(userId, (tx) => tx.query<{ tenant_id: string }>('select distinct tenant_id from sso_identities where user_id = $1', [userId]));
    for (const { tenant_id: orgId } of rows) await db.withTenant(orgId, (tx) => tx.query('delete from sso_identities where user_id = $1', [userId]));
  }

  // ---------- sign-in ----------

  /** A connection by the id in a sign-in path, through the presented-id policy only. Disabled or unknown: SSO_CONNECTION_UNKNOWN. */
  async function presented(id: string): Promise<ConnectionRow> {
    if (!UUID.test(id)) throw new AppError('SSO_CONNECTION_UNKNOWN');
    const row = await db.transaction(async (tx) => {
      await tx.query('select set_config($1, $2, true)', [CONNECTION_SETTING, id]);
      return (await tx.query<ConnectionRow>(`select ${COLUMNS} from sso_connections where id = $1`, [id])).rows[0];
    });
    if (!row || !row.enabled) throw new AppError('SSO_CONNECTION_UNKNOWN');
    return row;
  }

  function oidcOf(row: ConnectionRow): OidcConnection {
    if (row.kind !== 'oidc' || !row.oidc_issuer || !row.oidc_client_id || !row.oidc_client_secret_sealed || !row.oidc_scopes) throw new AppError('SSO_CONNECTION_UNKNOWN');
    const sealed = row.oidc_client_secret_sealed;
    return {
      id: row.id,
      issuer: row.oidc_issuer,
      clientId: row.oidc_client_id,
      scopes: row.oidc_scopes,
      version: `${iso(row.updated_at)}|${createHash('sha256').update(sealed).digest('base64url')}`,
      clientSecret: async () => (await keyring.open({ tenantId: row.tenant_id }, sealRef(row.id), sealed)).toString('utf8'),
    };
  }

  function samlOf(row: ConnectionRow): SamlConnection {
    if (row.kind !== 'saml' || !row.saml_idp_entity_id || !row.saml_sso_url || !row.saml_idp_certs) throw new AppError('SSO_CONNECTION_UNKNOWN');
    const conn: SamlConnection = { id: row.id, idpEntityId: row.saml_idp_entity_id, ssoUrl: row.saml_sso_url, certificates: row.saml_idp_certs, wantResponseSigned: row.saml_want_response_signed };
    const sealed = row.saml_sp_key_sealed;
    if (row.saml_sign_requests && sealed !== null && row.saml_sp_cert !== null) {
      conn.signing = { certificate: row.saml_sp_cert, privateKey: async () => (await keyring.open({ tenantId: row.tenant_id }, spKeyRef(row.id), sealed)).toString('utf8') };
    }
    return conn;
  }

  /** Where an email signs in: its domain's verified claim and that claim's enabled connection. */
  async function discover(rawEmail: string): Promise<{ sso: false } | { sso: true; connectionId: string; kind: 'oidc' | 'saml'; startUrl: string }> {
    const email = normalizeEmail(rawEmail);
    const domain = email.slice(email.lastIndexOf('@') + 1);
    const claim = await db.transaction(async (tx) => {
      await tx.query('select set_config($1, $2, true)', [DOMAIN_SETTING, domain]);
      return (await tx.query<{ tenant_id: string; connection_id: string }>('select tenant_id, connection_id from sso_domains where domain = $1 and verified_at is not null', [domain])).rows[0];
    });
    if (!claim) return { sso: false };
    const conn = (await db.withTenant(claim.tenant_id, (tx) => tx.query<{ id: string; kind: 'oidc' | 'saml' }>('select id, kind from sso_connections where id = $1 and enabled', [claim.connection_id]))).rows[0];
    if (!conn) return { sso: false };
    return { sso: true, connectionId: conn.id, kind: conn.kind, startUrl: `${publicOrigin}${startPathOf(conn.id)}` };
  }

  /** Starts a sign-in: the IdP URL and the state cookie (name, value, SameSite) binding it to this browser. */
  async function start(connectionId: string, mode: Mode): Promise<{ url: string; cookie: { name: string; value: string; sameSite: 'lax' | 'none'; maxAgeSeconds: number } }> {
    const row = await presented(connectionId);
    const maxAgeSeconds = Math.floor(deps.stateTtlMs / 1000);
    if (row.kind === 'oidc') {
      const started = await deps.oidc.start(oidcOf(row), mode);
      return { url: started.url, cookie: { name: SSO_OIDC_STATE_COOKIE, value: started.cookie, sameSite: 'lax', maxAgeSeconds } };
    }
    const started = await deps.saml.start(samlOf(row));
    const value = await deps.signer.sign({ c: row.id, m: mode, e: now() + deps.stateTtlMs, r: started.requestId });
    return { url: started.url, cookie: { name: SSO_SAML_STATE_COOKIE, value, sameSite: 'none', maxAgeSeconds } };
  }

  async function refuse(row: ConnectionRow, reason: string, code: string, detail?: string): Promise<never> {
    await audit.record({ tenantId: row.tenant_id, action: 'sso.failed', target: { type: 'sso_connection', id: row.id }, data: { reason } });
    logger.info({ event: 'sso_sign_in_refused', connection: row.id, reason, detail }, 'SSO sign-in refused');
    throw new AppError(code);
  }

  async function oidcCallback(connectionId: string, currentUrl: URL, cookie: string | undefined, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }) {
    const row = await presented(connectionId);
    if (row.kind !== 'oidc') throw new AppError('SSO_CONNECTION_UNKNOWN');
    let identity: Awaited<ReturnType<OidcProtocol['callback']>>;
    try {
      identity = await deps.oidc.callback(oidcOf(row), currentUrl, cookie);
    } catch (err) {
      if (err instanceof OidcRefusal) return refuse(row, err.reason, err.code, err.message);
      throw err;
    }
    // An IdP that says it did not verify the address is not believed, even in a verified domain.
    if (identity.emailVerified === false) return refuse(row, 'email-unverified', 'SSO_EMAIL_NOT_ALLOWED');
    return { ...(await finish(row, identity.subject, identity.email, { ...ctx, mode: identity.mode })), mode: identity.mode };
  }

  async function samlAcs(connectionId: string, samlResponse: string, cookie: string | undefined, ctx: Omit<SessionContext, 'mode'> & { deviceCookie?: string }) {
    const row = await presented(connectionId);
    if (row.kind !== 'saml') throw new AppError('SSO_CONNECTION_UNKNOWN');
    // The response must come back to the browser that started the sign-in (no login CSRF).
    const saved = await deps.signer.open(cookie, row.id).catch(() => refuse(row, 'state', 'SSO_STATE_INVALID'));
    if (!saved.r) return refuse(row, 'state', 'SSO_STATE_INVALID');
    let asserted: Awaited<ReturnType<SamlProtocol['acs']>>;
    try {
      asserted = await deps.saml.acs(samlOf(row), samlResponse);
    } catch (err) {
      if (err instanceof SamlRefusal) return refuse(row, err.reason, err.replayed ? 'SSO_ASSERTION_REPLAYED' : 'SSO_ASSERTION_INVALID', err.message);
      throw err;
    }
    if (asserted.inResponseTo !== saved.r) return refuse(row, 'state', 'SSO_STATE_INVALID');
    return { ...(await finish(row, asserted.subject, asserted.email, { ...ctx, mode: saved.m })), mode: saved.m };
  }

  /** The SP metadata of an enabled SAML connection (SSO_CONNECTION_UNKNOWN for anything else). */
  async function samlMetadata(connectionId: string): Promise<string> {
    const row = await presented(connectionId);
    if (row.kind !== 'saml') throw new AppError('SSO_CONNECTION_UNKNOWN');
    return await deps.saml.metadata(samlOf(row));
  }

  /**
   * The common end of a sign-in: checks the email against the org's verified domains, finds or
   * links or creates the user, makes them a member (default role) if they are not one, signs in.
   * Every refusal happens before anything is written.
   */
  async function finish(row: ConnectionRow, subject: string, rawEmail: string | null, ctx: SessionContext & { deviceCookie?: string }): Promise<SignedIn | SecondFactorRequired> {
    const orgId = row.tenant_id;
    let email: string;
    try {
      email = normalizeEmail(rawEmail ?? '');
    } catch {
      return refuse(row, 'email-missing', 'SSO_EMAIL_NOT_ALLOWED');
    }
    const domain = email.slice(email.lastIndexOf('@') + 1);
    const known = await db.withTenant(orgId, async (tx) => {
      const allowed = await tx.query('select 1 from sso_domains where domain = $1 and verified_at is not null', [domain]);
      const link = await tx.query<{ user_id: string }>('select user_id from sso_identities where connection_id = $1 and subject = $2', [row.id, subject]);
      return { allowed: allowed.rowCount > 0, linkedUser: link.rows[0]?.user_id ?? null };
    });
    if (!known.allowed) return refuse(row, 'email-domain', 'SSO_EMAIL_NOT_ALLOWED');

    let userId: string;
    let created = false;
    if (known.linkedUser) {
      const user = (await db.query<{ email: string; status: string }>("select email, status from users where id = $1 and status <> 'deleted'", [known.linkedUser])).rows[0];
      // The IdP now names another address for the same subject: not silently followed.
      if (!user || user.email !== email) return refuse(row, 'subject-email-mismatch', 'SSO_SUBJECT_MISMATCH');
      if (user.status === 'disabled') return refuse(row, 'disabled', 'ACCOUNT_DISABLED');
      userId = known.linkedUser;
    } else {
      const existing = await db.query<{ id: string; is_operator: boolean; status: string }>("select id, is_operator, status from users where email = $1 and status <> 'deleted'", [email]);
      const found = existing.rows[0];
      if (found?.is_operator) return refuse(row, 'operator', 'SSO_ACCOUNT_NOT_ELIGIBLE');
      // An operator disabled the account: no link, no membership, no session.
      if (found?.status === 'disabled') return refuse(row, 'disabled', 'ACCOUNT_DISABLED');
      if (found) {
        const other = await db.withTenant(orgId, (tx) => tx.query('select 1 from sso_identities where connection_id = $1 and user_id = $2', [row.id, found.id]));
        // This account is already linked to another subject of the same IdP.
        if (other.rowCount > 0) return refuse(row, 'user-linked-elsewhere', 'SSO_SUBJECT_MISMATCH');
        userId = found.id;
      } else {
        const id = await accounts.createVerifiedUser(email);
        const again = id ?? (await accounts.findUserIdByEmail(email));
        if (!again) throw new AppError('INTERNAL');
        userId = again;
        created = id !== null;
      }
    }

    const role: DefaultRole = isRole(row.default_role) && row.default_role !== ('owner' as string) ? row.default_role : 'viewer';
    const provisioned = await audit.prepare({ tenantId: orgId, action: 'sso.user.provisioned', target: { type: 'user', id: userId }, data: { connection: row.id, role, createdAccount: created } });
    const signedIn = await audit.prepare({ tenantId: orgId, action: 'sso.login', target: { type: 'user', id: userId }, actor: { type: 'user', id: userId }, data: { connection: row.id } });
    const joined = await db.withTenant(orgId, async (tx) => {
      // Someone who is not a member is provisioned only if no admin removed them from the org:
      // a removed person still signs in to their own account (the IdP proved who they are, and
      // they need a session to accept a new invitation) but does not become a member again.
      // The org row lock is the one member changes take, so a removal and this sign-in do not
      // interleave; a member's sign-in takes no lock.
      let removed = false;
      if ((await tx.query('select 1 from memberships where user_id = $1', [userId])).rowCount === 0) {
        await tx.query('select tenant_id from orgs for update');
        removed = (await tx.query('select 1 from member_removals where user_id = $1', [userId])).rowCount > 0;
      }
      const link = await tx
        .query(
        `insert into sso_identities (id, tenant_id, connection_id, subject, user_id, email, last_login_at) values ($1, $2, $3, $4, $5, $6, $7)
         on conflict (tenant_id, connection_id, subject) do update set last_login_at = excluded.last_login_at
         where sso_identities.user_id = excluded.user_id`,
        [randomUUID(), orgId, row.id, subject, userId, email, new Date(now())],
        )
        .catch((err: unknown) => {
          // The user got linked to another subject of this connection meanwhile.
          if ((err as { code?: string }).code === '23505') throw new AppError('SSO_SUBJECT_MISMATCH');
          throw err;
        });
      // Lost a race to another link of this subject (or of this user): nothing is kept.
      if (link.rowCount === 0) throw new AppError('SSO_SUBJECT_MISMATCH');
      if (removed) {
        await audit.append(tx, signedIn, { provisioned: false, reason: 'member-removed' });
        return false;
      }
      const member = await tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, $3) on conflict (tenant_id, user_id) do nothing", [orgId, userId, role]);
      if (member.rowCount > 0) await audit.append(tx, provisioned);
      await audit.append(tx, signedIn);
      return member.rowCount > 0;
    });
    if (joined) await deps.evictOrg(orgId);
    return accounts.signInVerifiedUser(userId, ctx, `sso:${row.id}`);
  }

  return {
    listConnections,
    getConnection,
    createConnection,
    updateConnection,
    deleteConnection,
    listDomains,
    claimDomain,
    removeDomain,
    verifyDomain,
    getSettings,
    setSettings,
    enforceSsoRequired,
    forgetUser,
    discover,
    start,
    oidcCallback,
    samlAcs,
    samlMetadata,
  };
}

export type Sso = ReturnType<typeof createSso>;
