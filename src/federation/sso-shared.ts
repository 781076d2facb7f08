/**
 * What the parts of enterprise SSO (AUTH-9) share: the connection row and its views, the inputs an
 * org admin sends, the services the parts are built from, and small pure helpers.
 */
import type { Logger } from 'pino';
import type { AuditLog } from '../audit/index.ts';
import type { Keyring } from '../keyring/keyring.ts';
import { AppError } from '../server/errors.ts';
import type { Db, Queryable } from '../store/db-types.ts';
import type { Accounts } from '../identity/index.ts';
import type { OidcProtocol } from './oidc.ts';
import type { SamlProtocol } from './saml.ts';
import type { StateSigner } from './state.ts';

export const SSO_SEALED_COLUMNS = [
  { table: 'sso_connections', column: 'oidc_client_secret_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
  { table: 'sso_connections', column: 'saml_sp_key_sealed', idColumn: 'id', tenantColumn: 'tenant_id' },
] as const;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export type Mode = 'bearer' | 'cookie';
export type DefaultRole = 'admin' | 'editor' | 'viewer';

export interface ConnectionRow {
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

export const COLUMNS =
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

export const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
export const isoOrNull = (v: Date | string | null): string | null => (v === null ? null : iso(v));

/** Where the OIDC client secret of a connection is sealed. */
export const secretRef = (id: string) => ({ table: 'sso_connections', column: 'oidc_client_secret_sealed', rowId: id });
/** Where the SAML SP signing key of a connection is sealed. */
export const spKeyRef = (id: string) => ({ table: 'sso_connections', column: 'saml_sp_key_sealed', rowId: id });
/** The path where a browser starts a sign-in with a connection. */
export const startPathOf = (id: string): string => `/v1/auth/sso/${id}/start`;

/** A connection of the org the transaction is scoped to, or NOT_FOUND. */
export async function connectionIn(tx: Queryable, id: string): Promise<ConnectionRow> {
  const row = (await tx.query<ConnectionRow>(`select ${COLUMNS} from sso_connections where id = $1`, [id])).rows[0];
  if (!row) throw new AppError('NOT_FOUND', 'No such SSO connection.');
  return row;
}
