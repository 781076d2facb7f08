/**
 * A minimal page for passkeys in a browser, served by Gatehouse at /passkeys: sign in (cookie
 * session, or a bearer token given in the URL fragment `#token=...`, which never reaches a
 * server), add a passkey, list and remove passkeys (after a passkey step-up), sign out, sign in
 * with a passkey alone, and use a passkey as the second step of a password sign-in.
 *
 * The script is a separate resource, so the page's CSP allows no inline script or style; it uses
 * plain navigator.credentials calls and converts base64url itself. Every function is also on
 * `window.gatehouse` (what the browser test drives).
 */

export const PASSKEY_PAGE_CSP =
  "default-src 'none'; script-src 'self'; connect-src 'self'; img-src 'self'; style-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

export const PASSKEY_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Gatehouse passkeys</title>
<script src="/passkeys/app.js" defer></script>
</head>
<body>
<h1>Passkeys</h1>
<p id="state">Signed out.</p>
<section>
  <h2>Sign in with a password</h2>
  <label>Email <input id="email" type="email" autocomplete="username"></label>
  <label>Password <input id="password" type="password" autocomplete="current-password"></label>
  <button id="sign-in" type="button">Sign in</button>
  <button id="mfa-passkey" type="button">Second step with a passkey</button>
</section>
<section>
  <h2>Sign in with a passkey</h2>
  <button id="passwordless" type="button">Sign in with a passkey</button>
</section>
<section>
  <h2>Your passkeys</h2>
  <label>Name <input id="passkey-name" type="text" maxlength="64" value="My passkey"></label>
  <button id="register" type="button">Add a passkey</button>
  <button id="list" type="button">List</button>
  <button id="step-up" type="button">Confirm with a passkey</button>
  <label>Passkey id <input id="passkey-id" type="text"></label>
  <button id="remove" type="button">Remove</button>
  <button id="sign-out" type="button">Sign out</button>
</section>
<pre id="log"></pre>
</body>
</html>
`;

export const PASSKEY_PAGE_SCRIPT = `'use strict';
(() => {
  const byId = (id) => document.getElementById(id);
  // A bearer token given in the fragment is used instead of the cookie session.
  let bearer = new URLSearchParams(location.hash.slice(1)).get('token');
  if (bearer) history.replaceState(null, '', location.pathname);
  let mfaToken = null;

  function fromBase64url(text) {
    const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
    const binary = atob(b64);
    const bytes = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
    return bytes;
  }

  function toBase64url(buffer) {
    const bytes = buffer instanceof Uint8Array ? buffer : new Uint8Array(buffer);
    let binary = '';
    for (let i = 0; i < bytes.length; i += 1) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\\+/g, '-').replace(/\\//g, '_').replace(/=+$/, '');
  }

  function csrfToken() {
    const entry = document.cookie.split('; ').find((c) => c.startsWith('__Host-gh_csrf='));
    return entry ? decodeURIComponent(entry.slice('__Host-gh_csrf='.length)) : '';
  }

  function show(text) {
    byId('log').textContent = text + '\\n' + byId('log').textContent;
  }

  function setState(text) {
    byId('state').textContent = text;
  }

  async function api(method, url, body) {
    const headers = {};
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (bearer) headers.authorization = 'Bearer ' + bearer;
    else if (method !== 'GET') headers['x-csrf-token'] = csrfToken();
    const res = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const code = (data && data.error && data.error.code) || 'HTTP_' + res.status;
      show(method + ' ' + url + ' -> ' + res.status + ' ' + code);
      const err = new Error(code);
      err.status = res.status;
      throw err;
    }
    show(method + ' ' + url + ' -> ' + res.status);
    return data;
  }

  const KNOWN_TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'];

  function creationOptions(o) {
    return {
      ...o,
      challenge: fromBase64url(o.challenge),
      user: { ...o.user, id: fromBase64url(o.user.id) },
      excludeCredentials: (o.excludeCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
    };
  }

  function requestOptions(o) {
    return {
      ...o,
      challenge: fromBase64url(o.challenge),
      allowCredentials: (o.allowCredentials || []).map((c) => ({ ...c, id: fromBase64url(c.id) })),
    };
  }

  function extensionResults(credential) {
    const r = credential.getClientExtensionResults();
    return r && r.credProps ? { credProps: { rk: r.credProps.rk === true } } : {};
  }

  function registrationJson(credential) {
    const r = credential.response;
    const transports = typeof r.getTransports === 'function' ? r.getTransports().filter((t) => KNOWN_TRANSPORTS.includes(t)) : [];
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      ...(credential.authenticatorAttachment ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
      clientExtensionResults: extensionResults(credential),
      response: { clientDataJSON: toBase64url(r.clientDataJSON), attestationObject: toBase64url(r.attestationObject), transports },
    };
  }

  function assertionJson(credential) {
    const r = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      ...(credential.authenticatorAttachment ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
      clientExtensionResults: extensionResults(credential),
      response: {
        clientDataJSON: toBase64url(r.clientDataJSON),
        authenticatorData: toBase64url(r.authenticatorData),
        signature: toBase64url(r.signature),
        ...(r.userHandle && r.userHandle.byteLength > 0 ? { userHandle: toBase64url(r.userHandle) } : {}),
      },
    };
  }

  async function assertion(options) {
    const credential = await navigator.credentials.get({ publicKey: requestOptions(options) });
    return assertionJson(credential);
  }

  async function signIn(email, password) {
    const r = await api('POST', '/v1/auth/login', { email, password, mode: 'cookie' });
    bearer = null;
    if (r.mfaRequired) {
      mfaToken = r.mfaToken;
      setState('Second step needed: ' + r.methods.join(', ') + '.');
      return { mfaRequired: true, methods: r.methods };
    }
    setState('Signed in with a password.');
    return { signedIn: true, sessionId: r.sessionId };
  }

  async function mfaWithPasskey() {
    if (!mfaToken) throw new Error('NO_SIGN_IN_IN_PROGRESS');
    const options = await api('POST', '/v1/auth/mfa/webauthn/options', { mfaToken });
    const webauthn = await assertion(options);
    const r = await api('POST', '/v1/auth/mfa/verify', { mfaToken, webauthn });
    mfaToken = null;
    setState('Signed in with a password and a passkey.');
    return { signedIn: true, sessionId: r.sessionId };
  }

  async function register(name, password) {
    const options = await api('POST', '/v1/me/passkeys/options', password ? { password } : {});
    const credential = await navigator.credentials.create({ publicKey: creationOptions(options) });
    const added = await api('POST', '/v1/me/passkeys', { name, response: registrationJson(credential) });
    setState('Passkey "' + added.name + '" added.');
    byId('passkey-id').value = added.id;
    return added;
  }

  async function listPasskeys() {
    const r = await api('GET', '/v1/me/passkeys');
    show(r.passkeys.map((p) => p.id + ' ' + p.name).join('\\n') || 'No passkeys.');
    return r.passkeys;
  }

  async function passwordless() {
    const options = await api('POST', '/v1/auth/passkey/options', {});
    const response = await assertion(options);
    const r = await api('POST', '/v1/auth/passkey/verify', { response, mode: 'cookie' });
    bearer = null;
    setState('Signed in with a passkey.');
    return { signedIn: true, sessionId: r.sessionId };
  }

  async function stepUp() {
    const options = await api('POST', '/v1/me/mfa/step-up/webauthn/options', {});
    const webauthn = await assertion(options);
    const r = await api('POST', '/v1/me/mfa/step-up', { webauthn });
    setState('Confirmed with a passkey.');
    return r;
  }

  async function removePasskey(id) {
    await api('DELETE', '/v1/me/passkeys/' + encodeURIComponent(id));
    setState('Passkey removed.');
    return { removed: id };
  }

  async function me() {
    return api('GET', '/v1/me');
  }

  async function signOut() {
    await api('POST', '/v1/auth/logout', {});
    bearer = null;
    setState('Signed out.');
    return { signedOut: true };
  }

  function useToken(token) {
    bearer = token;
  }

  const run = (fn) => () => fn().catch((err) => show('error: ' + err.message));
  byId('sign-in').addEventListener('click', run(() => signIn(byId('email').value, byId('password').value)));
  byId('mfa-passkey').addEventListener('click', run(mfaWithPasskey));
  byId('passwordless').addEventListener('click', run(passwordless));
  byId('register').addEventListener('click', run(() => register(byId('passkey-name').value)));
  byId('list').addEventListener('click', run(listPasskeys));
  byId('step-up').addEventListener('click', run(stepUp));
  byId('remove').addEventListener('click', run(() => removePasskey(byId('passkey-id').value)));
  byId('sign-out').addEventListener('click', run(signOut));
  window.gatehouse = { signIn, mfaWithPasskey, register, listPasskeys, passwordless, stepUp, removePasskey, me, signOut, useToken };
  document.documentElement.dataset.ready = 'true';
})();
`;
