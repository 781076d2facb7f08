/**
 * The apiKey verifier's path for credentials derived from API keys (client tokens, GW-6): each
 * registered verifier is asked in turn; the first that recognises the credential decides, then the
 * parent key's current state (read through the API keys' cache) must allow it.
 */
import type { FastifyRequest } from 'fastify';
import type { Principal } from '../server/route.ts';
import type { ApiCredentialVerifier, DelegatedCredential } from './credentials.ts';
import type { VerifiedKey } from './keys-store.ts';

/** The key a request was verified with; `delegation` when it came with a credential derived from it (a client token). */
export interface RequestKey extends VerifiedKey {
  delegation?: DelegatedCredential;
}

export interface DerivedVerifierDeps {
  verifiers: (() => readonly ApiCredentialVerifier[]) | undefined;
  /** The parent key through the per-node cache; null when unknown. */
  loadParent: (keyId: string) => Promise<VerifiedKey | null>;
  touch: (key: VerifiedKey, at: number) => void;
  remember: (request: FastifyRequest, key: RequestKey) => void;
  now: () => number;
}

/** A derived credential (client token): its verifier's verdict, then its parent key's state. */
export function createDerivedVerifier(deps: DerivedVerifierDeps): (presented: string, request: FastifyRequest) => Promise<Principal | null> {
  return async function verifyDerived(presented: string, request: FastifyRequest): Promise<Principal | null> {
    for (const verifier of deps.verifiers?.() ?? []) {
      const credential = await verifier.verify(presented, request);
      if (credential === undefined) continue;
      if (credential === null) return null;
      const parent = await deps.loadParent(credential.parentKeyId);
      const at = deps.now();
      if (!parent || parent.revoked || (parent.expiresAt !== null && at >= parent.expiresAt)) return null;
      if (parent.tenantId !== credential.tenantId || parent.workspaceId !== credential.workspaceId) return null;
      // Never more than the parent holds now, and never the right to mint.
      const scopes = credential.scopes.filter((s) => s !== 'tokens:mint' && parent.scopes.includes(s));
      deps.touch(parent, at);
      deps.remember(request, { ...parent, delegation: credential });
      const limit = credential.rateLimitPerMinute ?? parent.rateLimitPerMinute;
      return {
        kind: 'apiKey',
        id: parent.id,
        tenantId: parent.tenantId,
        workspaceId: parent.workspaceId,
        scopes,
        // Every token of one subject (an end user, a bot) shares one window in the workspace.
        rateKey: credential.subject !== null ? `subject:${parent.workspaceId}:${credential.subject}` : `token:${credential.credentialId}`,
        ...(limit !== null ? { rateLimit: { limit, windowSeconds: 60 } } : {}),
      };
    }
    return null;
  };
}
