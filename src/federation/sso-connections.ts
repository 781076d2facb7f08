/**
 * SSO connections of an org (AUTH-9), managed by its admins: an OIDC issuer with its client, or a
 * SAML IdP from its metadata. The checks on what an admin sends are pure functions, testable
 * without a database.
 */
import { createHash, randomUUID, X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { createAddressCheck } from '../net/egress.ts';
import { AppError } from '../server/errors.ts';
import { canGrant, type Role } from '../tenancy/index.ts';
import { redirectUriOf } from './oidc.ts';
import { acsUrlOf, createSpSigningKey, parseIdpMetadata, pemToDer, spEntityIdOf } from './saml.ts';
import {
  COLUMNS,
  connectionIn,
  iso,
  secretRef,
  spKeyRef,
  startPathOf,
  type ConnectionChanges,
  type ConnectionRow,
  type ConnectionView,
  type DefaultRole,
  type NewConnection,
  type SsoDeps,
} from './sso-shared.ts';

// The shared egress rules (net/egress): loopback, private, link-local, CGNAT, documentation, multicast and
// reserved ranges, IPv4-mapped IPv6 judged on its IPv4 address.
const publicAddress = createAddressCheck([]);

/** A host name that is localhost or an IP literal outside the public address space. */
export function isInternalHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  return isIP(host) !== 0 && !publicAddress(host);
}

/** An OIDC issuer an org admin may configure: https (http only when insecure URLs are allowed), no credentials, query or fragment, not an internal address. */
export function checkIssuer(issuer: string, allowInsecureUrls: boolean): string {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    throw new AppError('VALIDATION_FAILED', 'body.issuer: not a URL');
  }
  if (!(url.protocol === 'https:' || (allowInsecureUrls && url.protocol === 'http:')) || url.username || url.password || url.search || url.hash) {
    throw new AppError('VALIDATION_FAILED', 'body.issuer: an https URL without credentials, query or fragment');
  }
  // Discovery is fetched by the server: an org admin may not aim it at the host's own or private
  // network by address (a local test IdP needs sso.allowInsecureRequests).
  if (!allowInsecureUrls && isInternalHost(url.hostname)) throw new AppError('VALIDATION_FAILED', 'body.issuer: a loopback, private or link-local address is not accepted');
  // Kept as given: discovery compares the IdP's issuer with it exactly (some end with a slash).
  return issuer;
}

/** An admin cannot make a connection hand out a role above their own. */
export function checkRole(actor: Role, role: DefaultRole): void {
  if (!canGrant(actor, role)) throw new AppError('ROLE_ABOVE_OWN');
}

/** The scopes of an OIDC connection must include openid. */
export function checkScopes(scopes: string[]): string[] {
  if (!scopes.includes('openid')) throw new AppError('VALIDATION_FAILED', 'body.scopes: must include openid');
  return scopes;
}

/** Changes that name a field of the other kind of connection are refused. */
export function checkChangesFit(kind: 'oidc' | 'saml', changes: ConnectionChanges): void {
  const oidcOnly = changes.clientId !== undefined || changes.clientSecret !== undefined || changes.scopes !== undefined;
  const samlOnly = changes.metadataXml !== undefined || changes.wantResponseSigned !== undefined || changes.signRequests !== undefined;
  if ((kind === 'saml' && oidcOnly) || (kind === 'oidc' && samlOnly)) {
    throw new AppError('VALIDATION_FAILED', `body: a field that does not apply to a ${kind} connection`);
  }
  if (changes.scopes) checkScopes(changes.scopes);
}

/** The names of the fields an update changes (for the audit event: never a value, the secret least of all). */
export function changedFields(changes: ConnectionChanges): string {
  return Object.entries(changes)
    .filter(([, v]) => v !== undefined)
    .map(([k]) => k)
    .sort()
    .join(',');
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

/** What an org admin sees of a connection: never a secret or a private key. */
export function connectionView(publicOrigin: string, r: ConnectionRow): ConnectionView {
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

export function createSsoConnections(deps: SsoDeps) {
  const { db, keyring, audit, now, publicOrigin } = deps;
  const view = (r: ConnectionRow): ConnectionView => connectionView(publicOrigin, r);

  /** A new SP signing key for a SAML connection: the private key sealed with the org's data key, the certificate. */
  async function newSpKey(orgId: string, id: string): Promise<{ sealed: string; certificate: string }> {
    const { privateKeyPem, certificatePem } = await createSpSigningKey(id, new Date(now()));
    return { sealed: await keyring.seal({ tenantId: orgId }, spKeyRef(id), privateKeyPem), certificate: certificatePem };
  }

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
      const scopes = checkScopes(input.scopes ?? ['openid', 'email', 'profile']);
      const sealed = await keyring.seal({ tenantId: orgId }, secretRef(id), input.clientSecret);
      values = [checkIssuer(input.issuer, deps.allowInsecureUrls), input.clientId, sealed, scopes, null, null, null, false, false, null, null];
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
    checkChangesFit(current.kind, changes);
    const sealed = changes.clientSecret !== undefined ? await keyring.seal({ tenantId: orgId }, secretRef(id), changes.clientSecret) : null;
    const md = changes.metadataXml !== undefined ? parseIdpMetadata(changes.metadataXml, { allowInsecureUrls: deps.allowInsecureUrls }) : null;
    // The first time signing is turned on, the connection gets its key; turned off and on again, it keeps it.
    const spKey = changes.signRequests === true && current.saml_sp_key_sealed === null ? await newSpKey(orgId, id) : null;
    const event = await audit.prepare({
      tenantId: orgId,
      action: 'sso.connection.updated',
      target: { type: 'sso_connection', id },
      // What changed, never a value of the secret.
      data: { fields: changedFields(changes) },
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

  return { listConnections, getConnection, createConnection, updateConnection, deleteConnection };
}
