/**
 * SSO sign-in (AUTH-9): routing an email to its org's connection by verified domain, starting a
 * sign-in at the IdP, and taking its answer (OIDC callback, SAML ACS) to the common end in
 * sso-provisioning.ts. A connection is reached by the id in the path only while it is enabled.
 */
import { createHash } from 'node:crypto';
import { AppError } from '../server/errors.ts';
import { normalizeEmail, type SessionContext } from '../identity/index.ts';
import { type OidcConnection, type OidcProtocol, OidcRefusal } from './oidc.ts';
import { SamlRefusal, type SamlConnection, type SamlProtocol } from './saml.ts';
import { domainOfEmail } from './sso-domains.ts';
import { createSsoProvisioning } from './sso-provisioning.ts';
import { COLUMNS, iso, secretRef, spKeyRef, startPathOf, UUID, type ConnectionRow, type Mode, type SsoDeps } from './sso-shared.ts';
import { SSO_OIDC_STATE_COOKIE, SSO_SAML_STATE_COOKIE } from './state.ts';

const CONNECTION_SETTING = 'gatehouse.sso_connection_id';
const DOMAIN_SETTING = 'gatehouse.sso_domain';

export function createSsoSignIn(deps: SsoDeps) {
  const { db, keyring, audit, logger, now, publicOrigin } = deps;
  const { finish } = createSsoProvisioning(deps, refuse);

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
      clientSecret: async () => (await keyring.open({ tenantId: row.tenant_id }, secretRef(row.id), sealed)).toString('utf8'),
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
    const domain = domainOfEmail(normalizeEmail(rawEmail));
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

  return { discover, start, oidcCallback, samlAcs, samlMetadata };
}
