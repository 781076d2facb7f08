-- why: some SAML identity providers require the service provider to sign its AuthnRequests
-- (AUTH-9). A SAML connection can now have its own SP signing key: RSA 2048 with a self-signed
-- certificate, made when signing is first turned on. The private key is sealed with the org's data
-- key (src/keyring, like the OIDC client secret), the certificate is public: the connection's SP
-- metadata publishes it for the IdP. Turning signing off keeps the key, so turning it on again does
-- not make the IdP re-import a certificate.
alter table sso_connections
  add column saml_sign_requests boolean not null default false,
  add column saml_sp_key_sealed text,
  add column saml_sp_cert text,
  add constraint sso_connections_saml_signing check (
    not saml_sign_requests or (kind = 'saml' and saml_sp_key_sealed is not null and saml_sp_cert is not null)
  );
