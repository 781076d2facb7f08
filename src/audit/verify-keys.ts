/**
 * The keys of the offline verifier (AUDIT-3): which keys are trusted (pinned kids or JWKS keys),
 * the key lines the export declares, and the check of a checkpoint's signature by one of them.
 * Imports nothing that reaches a database or the network (see verify.ts).
 */
import { createPublicKey, verify, type KeyObject } from 'node:crypto';
import { ed25519Thumbprint, verifyEd25519 } from '../crypto/signing.ts';
import type { Checkpoint } from './checkpoint.ts';
import type { KeyLine } from './export-format.ts';
import type { TrustedKey } from './verify-pins.ts';
import type { VerifyFailure } from './verify-types.ts';

export interface PublicKey {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
}

export class VerifierKeys {
  /** Kids to trust, or null when none were pinned. */
  readonly trusted: ReadonlySet<string> | null;
  /** Trusted keys by kid, when given as keys (a saved checkpoint is checked against them). */
  readonly trustedKeys = new Map<string, TrustedKey>();
  #keys = new Map<string, PublicKey>();
  /** Keys that already verified a signature, loaded once (loading costs more than verifying). */
  #loadedKeys = new Map<string, KeyObject>();

  constructor(trustedKids: Iterable<string> | undefined, trustedKeys: readonly TrustedKey[] | undefined) {
    const trusted = trustedKids === undefined && trustedKeys === undefined ? null : new Set(trustedKids ?? []);
    for (const key of trustedKeys ?? []) {
      const kid = ed25519Thumbprint(key.x);
      trusted?.add(kid);
      this.trustedKeys.set(kid, key);
    }
    this.trusted = trusted;
  }

  /** Takes a key line: its kid is its key's thumbprint, declared once, and trusted when kids are pinned. */
  declare(line: KeyLine): VerifyFailure | PublicKey {
    const { kid, jwk } = line;
    if (this.#keys.has(kid)) return { reason: 'BAD_KEY', index: null, message: `key ${kid} is declared twice` };
    if (ed25519Thumbprint(jwk.x) !== kid || (jwk.kid !== undefined && jwk.kid !== kid)) {
      return { reason: 'BAD_KEY', index: null, message: `key ${kid} is not the thumbprint of its JWK` };
    }
    if (this.trusted !== null && !this.trusted.has(kid)) {
      return { reason: 'UNTRUSTED_KEY', index: null, message: `key ${kid} is not among the trusted keys` };
    }
    const key: PublicKey = { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
    this.#keys.set(kid, key);
    return { ...key };
  }

  /**
   * Checks a checkpoint's signature (`signed` its canonical bytes) by the declared key it names.
   * `at` names the checkpoint in messages and `from` is the index each failure reports.
   */
  checkSignature(cp: Checkpoint, signed: Buffer, signatureText: string, at: string, from: number): VerifyFailure | null {
    const key = this.#keys.get(cp.kid);
    if (key === undefined) return { reason: 'UNKNOWN_KEY', index: from, message: `${at} is signed by key ${cp.kid}, which no key line before it declares` };
    const signature = Buffer.from(signatureText, 'base64url');
    const loaded = this.#loadedKeys.get(cp.kid);
    let valid: boolean;
    if (loaded !== undefined) {
      // The same check as verifyEd25519, whose JWK checks this key already passed.
      try {
        valid = signature.length === 64 && verify(null, signed, loaded, signature);
      } catch {
        valid = false;
      }
    } else {
      try {
        valid = verifyEd25519(key, signed, signature);
      } catch (err) {
        return { reason: 'BAD_KEY', index: from, message: `key ${cp.kid} cannot be used: ${(err as Error).message}` };
      }
      this.#loadedKeys.set(cp.kid, createPublicKey({ key: { kty: key.kty, crv: key.crv, x: key.x }, format: 'jwk' }));
    }
    if (!valid) return { reason: 'BAD_SIGNATURE', index: from, message: `${at} does not carry a valid signature by key ${cp.kid}` };
    return null;
  }
}
