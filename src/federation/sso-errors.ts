/** Error codes of enterprise SSO (AUTH-9). */
export const SSO_ERROR_CODES = {
  SSO_CONNECTION_UNKNOWN: { status: 404, message: 'No such single sign-on connection.', doc: 'The connection id in a sign-in path is unknown, malformed or disabled.' },
  SSO_METADATA_INVALID: {
    status: 400,
    message: 'The IdP metadata is not usable.',
    doc: 'SAML IdP metadata that is not well-formed, has a DOCTYPE, describes no single SAML 2.0 IdP, has no https HTTP-Redirect SingleSignOnService, or carries no readable signing certificate.',
  },
  SSO_DOMAIN_EXISTS: { status: 409, message: 'This organization already claimed this domain.', doc: 'A domain is claimed once per organization.' },
  SSO_DOMAIN_TAKEN: { status: 409, message: 'This domain is verified for another organization.', doc: 'A domain routes sign-ins to one organization at most; the operator cannot verify it for a second one.' },
  SSO_NOT_READY: {
    status: 409,
    message: 'Set up an enabled connection with a verified domain first.',
    doc: 'Requiring SSO needs an enabled connection with at least one verified domain, so members have somewhere to sign in.',
  },
  SSO_REQUIRED: {
    status: 403,
    message: 'Your organization requires single sign-on.',
    doc: 'The password was right, but the user is a member (not an owner) of an organization that requires SSO; the message and the `Link` header (rel="sso") name the start URL. Owners keep password sign-in as a break-glass. Also refuses social and passkey sign-in of such members.',
  },
  SSO_IDP_UNAVAILABLE: { status: 502, message: 'The identity provider could not be reached.', doc: 'OIDC discovery at the connection\'s issuer failed; retry later or check the issuer URL.' },
  SSO_STATE_INVALID: {
    status: 400,
    message: 'The sign-in could not be matched to this browser; start again.',
    doc: 'The SSO callback or ACS came without the state cookie of the browser that started it, with another state or request id, after its expiry, or a second time.',
  },
  SSO_EXCHANGE_FAILED: {
    status: 400,
    message: 'The identity provider\'s answer could not be accepted; start again.',
    doc: 'OIDC: the code exchange or the id_token check failed (a spent code, a wrong PKCE verifier, another issuer or audience, a wrong nonce, an expired token, an IdP error).',
  },
  SSO_ASSERTION_INVALID: {
    status: 400,
    message: 'The SAML response could not be accepted; start again.',
    doc: 'SAML: no valid signature from the IdP\'s certificates (unsigned, another key, wrapped), outside its time window beyond `sso.clockSkewSeconds`, another audience, recipient, destination or issuer, or an InResponseTo that is not a request this deployment issued and has not answered yet.',
  },
  SSO_ASSERTION_REPLAYED: { status: 400, message: 'This SAML assertion was already used.', doc: 'SAML: an assertion id already accepted once (replay cache, kept until the assertion expires).' },
  SSO_EMAIL_NOT_ALLOWED: {
    status: 403,
    message: 'The identity provider did not give an email address in this organization\'s verified domains.',
    doc: 'The asserted email is missing, invalid, outside every verified domain of the connection\'s organization, or the IdP said it is not verified.',
  },
  SSO_SUBJECT_MISMATCH: {
    status: 403,
    message: 'This identity provider account is linked to another email address.',
    doc: 'The IdP subject is linked to an account with another email, or the account with this email is linked to another subject of the same connection.',
  },
  SSO_ACCOUNT_NOT_ELIGIBLE: { status: 403, message: 'This account cannot sign in with single sign-on.', doc: 'Platform operators sign in with their password and second factor, never through an organization\'s IdP.' },
} as const;
