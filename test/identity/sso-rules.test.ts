/**
 * The rules of enterprise SSO (AUTH-9) as pure functions, without HTTP or a database: which domains
 * an org may claim, which issuers an admin may configure, which accounts an SSO sign-in may link or
 * provision and with which role, and when "SSO required" refuses a sign-in.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { SSO_ERROR_CODES } from '../../src/federation/routes.ts';
import { changedFields, checkChangesFit, checkIssuer, checkRole, isInternalHost } from '../../src/federation/sso-connections.ts';
import { domainOfEmail, normalizeDomain } from '../../src/federation/sso-domains.ts';
import { isSsoMethod, ssoRequiredError } from '../../src/federation/sso-policy.ts';
import { assertedEmail, checkExistingAccount, checkLinkedUser, provisionedRole } from '../../src/federation/sso-provisioning.ts';
import { AppError, registerErrorCodes } from '../../src/server/errors.ts';
import { TENANCY_ERROR_CODES } from '../../src/tenancy/errors.ts';

// The feature registers its codes when a node starts; here the rules run alone.
beforeAll(() => {
  registerErrorCodes(SSO_ERROR_CODES);
  registerErrorCodes(TENANCY_ERROR_CODES);
});

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof AppError ? err.code : `not an AppError: ${String(err)}`;
  }
  return undefined;
}

describe('SSO domain claims', () => {
  it('normalizes a claimed domain to lowercase ASCII without a trailing dot', () => {
    expect(normalizeDomain(' Example.COM. ')).toBe('example.com');
    expect(normalizeDomain('bücher.example')).toBe('xn--bcher-kva.example');
  });

  it('refuses what is not a domain name: one label, an IP address, a URL, an address with credentials or a port', () => {
    for (const raw of ['localhost', 'com', '10.0.0.1', '127.1', 'https://example.com', 'user@example.com', 'example.com:443', 'exa mple.com', '[::1]', '', '-bad.example', 'a'.repeat(64) + '.example']) {
      expect(codeOf(() => normalizeDomain(raw)), raw).toBe('VALIDATION_FAILED');
    }
  });

  it('matches an email to a claim by the part after its last @', () => {
    expect(domainOfEmail('alice@corp.example')).toBe('corp.example');
    expect(domainOfEmail('"a@b"@corp.example')).toBe('corp.example');
  });
});

describe('SSO connection settings', () => {
  it('accepts an https issuer and refuses http, credentials, a query or a fragment', () => {
    expect(checkIssuer('https://idp.example/realms/a/', false)).toBe('https://idp.example/realms/a/');
    for (const bad of ['http://idp.example', 'https://u:p@idp.example', 'https://idp.example/?a=1', 'https://idp.example/#x', 'not a url']) {
      expect(codeOf(() => checkIssuer(bad, false)), bad).toBe('VALIDATION_FAILED');
    }
  });

  it('refuses an issuer on a loopback, private or link-local address unless insecure URLs are allowed', () => {
    for (const bad of ['https://127.0.0.1', 'https://10.1.2.3', 'https://169.254.169.254', 'https://[::1]', 'https://[::ffff:10.0.0.1]', 'https://localhost', 'https://idp.localhost']) {
      expect(codeOf(() => checkIssuer(bad, false)), bad).toBe('VALIDATION_FAILED');
    }
    expect(checkIssuer('http://127.0.0.1:8080', true)).toBe('http://127.0.0.1:8080');
    expect(isInternalHost('idp.example')).toBe(false);
    expect(isInternalHost('8.8.8.8')).toBe(false);
  });

  it('refuses a default role above the admin who sets it', () => {
    expect(codeOf(() => checkRole('admin', 'editor'))).toBeUndefined();
    expect(codeOf(() => checkRole('editor', 'admin'))).toBe('ROLE_ABOVE_OWN');
    expect(codeOf(() => checkRole('viewer', 'editor'))).toBe('ROLE_ABOVE_OWN');
  });

  it('refuses a change naming a field of the other kind of connection, or scopes without openid', () => {
    expect(codeOf(() => checkChangesFit('saml', { clientSecret: 's' }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => checkChangesFit('oidc', { metadataXml: '<x/>' }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => checkChangesFit('oidc', { scopes: ['email'] }))).toBe('VALIDATION_FAILED');
    expect(codeOf(() => checkChangesFit('oidc', { scopes: ['openid', 'email'], name: 'x' }))).toBeUndefined();
  });

  it('records which fields changed, never their values', () => {
    const fields = changedFields({ clientSecret: 'the-secret', name: 'Corp', enabled: undefined });
    expect(fields).toBe('clientSecret,name');
    expect(fields).not.toContain('the-secret');
  });
});

describe('SSO provisioning decisions', () => {
  it('lets a linked subject sign in only with the same email and while the account is enabled', () => {
    expect(checkLinkedUser({ email: 'a@corp.example', status: 'active' }, 'a@corp.example')).toBeNull();
    expect(checkLinkedUser({ email: 'a@corp.example', status: 'active' }, 'b@corp.example')?.code).toBe('SSO_SUBJECT_MISMATCH');
    expect(checkLinkedUser(undefined, 'a@corp.example')?.code).toBe('SSO_SUBJECT_MISMATCH');
    expect(checkLinkedUser({ email: 'a@corp.example', status: 'disabled' }, 'a@corp.example')).toEqual({ reason: 'disabled', code: 'ACCOUNT_DISABLED' });
  });

  it('never links an operator account, a disabled account or one linked to another subject', () => {
    expect(checkExistingAccount(undefined, false)).toBeNull();
    expect(checkExistingAccount({ is_operator: false, status: 'active' }, false)).toBeNull();
    expect(checkExistingAccount({ is_operator: true, status: 'active' }, false)).toEqual({ reason: 'operator', code: 'SSO_ACCOUNT_NOT_ELIGIBLE' });
    expect(checkExistingAccount({ is_operator: false, status: 'disabled' }, false)?.code).toBe('ACCOUNT_DISABLED');
    expect(checkExistingAccount({ is_operator: false, status: 'active' }, true)).toEqual({ reason: 'user-linked-elsewhere', code: 'SSO_SUBJECT_MISMATCH' });
  });

  it('provisions with the connection default role but never as owner', () => {
    expect(provisionedRole('editor')).toBe('editor');
    expect(provisionedRole('admin')).toBe('admin');
    expect(provisionedRole('owner')).toBe('viewer');
    expect(provisionedRole('superuser')).toBe('viewer');
  });

  it('refuses a sign-in whose IdP sent no usable email', () => {
    expect(assertedEmail(null)).toBeNull();
    expect(assertedEmail('not-an-email')).toBeNull();
    expect(assertedEmail('Alice@Corp.Example')).toBe('alice@corp.example');
  });
});

describe('SSO required policy', () => {
  it('exempts only SSO sign-ins', () => {
    expect(isSsoMethod('sso:6d0f1c7e-7f5e-4f0e-9d8a-0a1b2c3d4e5f')).toBe(true);
    for (const method of ['password', 'passkey', 'social:google', 'magic-link', 'SSO:x']) expect(isSsoMethod(method), method).toBe(false);
  });

  it('sends a refused member to the first enabled connection, or to discovery when there is none', () => {
    const toConnection = ssoRequiredError('https://gh.example', 'c1');
    expect(toConnection.code).toBe('SSO_REQUIRED');
    expect(toConnection.headers.link).toBe('<https://gh.example/v1/auth/sso/c1/start>; rel="sso"');
    expect(toConnection.message).toContain('/v1/auth/sso/c1/start');
    expect(ssoRequiredError('https://gh.example', null).headers.link).toBe('<https://gh.example/v1/auth/sso/discover>; rel="sso"');
  });
});
