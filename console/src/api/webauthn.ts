/**
 * Passkeys in the browser: the API's JSON options (base64url fields) to the WebAuthn objects and
 * the credential back to the JSON the API verifies.
 */
type Json = Record<string, unknown>;

function fromB64url(text: string): ArrayBuffer {
  const b64 = text.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((text.length + 3) % 4);
  const binary = atob(b64);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i += 1) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}

function toB64url(buffer: ArrayBuffer): string {
  const bytes = new Uint8Array(buffer);
  let binary = '';
  for (const b of bytes) binary += String.fromCharCode(b);
  return btoa(binary).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

const KNOWN_TRANSPORTS = ['ble', 'cable', 'hybrid', 'internal', 'nfc', 'smart-card', 'usb'];

function credentialIds(list: unknown): PublicKeyCredentialDescriptor[] {
  return ((list as Array<{ id: string; type: 'public-key'; transports?: AuthenticatorTransport[] }> | undefined) ?? []).map((c) => ({ ...c, id: fromB64url(c.id) }));
}

function extensions(credential: PublicKeyCredential): Json {
  const r = credential.getClientExtensionResults() as { credProps?: { rk?: boolean } };
  return r.credProps ? { credProps: { rk: r.credProps.rk === true } } : {};
}

/** navigator.credentials.get with the API's request options; the assertion as the API's JSON. */
export async function getAssertion(options: unknown): Promise<Json> {
  const o = options as Json & { challenge: string; allowCredentials?: unknown };
  const publicKey = { ...o, challenge: fromB64url(o.challenge), allowCredentials: credentialIds(o.allowCredentials) } as PublicKeyCredentialRequestOptions;
  const credential = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error('No passkey was used.');
  const r = credential.response as AuthenticatorAssertionResponse;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    ...(credential.authenticatorAttachment ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
    clientExtensionResults: extensions(credential),
    response: {
      clientDataJSON: toB64url(r.clientDataJSON),
      authenticatorData: toB64url(r.authenticatorData),
      signature: toB64url(r.signature),
      ...(r.userHandle ? { userHandle: toB64url(r.userHandle) } : {}),
    },
  };
}

/** navigator.credentials.create with the API's creation options; the new credential as the API's JSON. */
export async function createCredential(options: unknown): Promise<Json> {
  const o = options as Json & { challenge: string; user: Json & { id: string }; excludeCredentials?: unknown };
  const publicKey = {
    ...o,
    challenge: fromB64url(o.challenge),
    user: { ...o.user, id: fromB64url(o.user.id) },
    excludeCredentials: credentialIds(o.excludeCredentials),
  } as PublicKeyCredentialCreationOptions;
  const credential = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  if (!credential) throw new Error('No passkey was created.');
  const r = credential.response as AuthenticatorAttestationResponse;
  return {
    id: credential.id,
    rawId: toB64url(credential.rawId),
    type: credential.type,
    ...(credential.authenticatorAttachment ? { authenticatorAttachment: credential.authenticatorAttachment } : {}),
    clientExtensionResults: extensions(credential),
    response: {
      clientDataJSON: toB64url(r.clientDataJSON),
      attestationObject: toB64url(r.attestationObject),
      transports: r.getTransports().filter((t) => KNOWN_TRANSPORTS.includes(t)),
    },
  };
}
