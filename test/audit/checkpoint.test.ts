/**
 * Checkpoints: the signed bytes are the canonical JSON, the signature binds every member, the
 * kid must name the verifying key, and the chain hash changes with any member.
 */
import { describe, expect, it } from 'vitest';
import { ed25519Signer, generateSigningKey } from '../../src/crypto/signing.ts';
import { canonicalText } from '../../src/audit/canonical.ts';
import { checkpointBytes, checkpointHash, signCheckpoint, verifyCheckpointSignature, type Checkpoint } from '../../src/audit/checkpoint.ts';
import { rootOf, leafHash } from '../../src/audit/merkle.ts';

const key = generateSigningKey();
const other = generateSigningKey();
const sign = ed25519Signer(key.privatePkcs8);
const root = rootOf([leafHash(Buffer.from('a')), leafHash(Buffer.from('b'))]).toString('base64url');
const cp: Checkpoint = { log: 'tenant-acme', size: 2, root, previous: null, kid: key.kid, time: '2025-03-01T09:00:00.000Z' };

describe('checkpoints', () => {
  it('sign the canonical JSON and verify with the named key', () => {
    expect(checkpointBytes(cp).toString()).toBe(canonicalText(cp));
    const signed = signCheckpoint(cp, sign);
    expect(signed.signature).toMatch(/^[A-Za-z0-9_-]{86}$/);
    expect(verifyCheckpointSignature(signed, key.publicJwk)).toBe(true);
  });

  it.each<[string, Partial<Checkpoint>]>([
    ['size', { size: 3 }],
    ['root', { root: Buffer.alloc(32).toString('base64url') }],
    ['previous', { previous: checkpointHash(cp) }],
    ['log', { log: 'tenant-other' }],
    ['time', { time: '2025-03-01T09:00:01.000Z' }],
  ])('refuse a signature once %s is changed', (_member, change) => {
    const signed = signCheckpoint(cp, sign);
    expect(verifyCheckpointSignature({ ...signed, checkpoint: { ...signed.checkpoint, ...change } }, key.publicJwk)).toBe(false);
  });

  it('refuse another key, and a checkpoint whose kid names another key', () => {
    expect(verifyCheckpointSignature(signCheckpoint(cp, sign), other.publicJwk)).toBe(false);
    const misnamed = signCheckpoint({ ...cp, kid: other.kid }, sign);
    expect(verifyCheckpointSignature(misnamed, key.publicJwk)).toBe(false);
  });

  it('answer false for a malformed signature and throw only for a malformed key', () => {
    const signed = signCheckpoint(cp, sign);
    expect(verifyCheckpointSignature({ ...signed, signature: 'AAAA' }, key.publicJwk)).toBe(false);
    expect(verifyCheckpointSignature({ ...signed, checkpoint: { ...cp, extra: 1 } as Checkpoint }, key.publicJwk)).toBe(false);
    expect(() => verifyCheckpointSignature(signed, { kty: 'OKP', crv: 'Ed25519', x: 'short' })).toThrow(TypeError);
  });

  it.each<[string, Partial<Record<keyof Checkpoint, unknown>>]>([
    ['a root of 31 bytes', { root: Buffer.alloc(31).toString('base64url') }],
    ['a root in padded base64', { root: Buffer.alloc(32).toString('base64') }],
    ['a negative size', { size: -1 }],
    ['a fractional size', { size: 1.5 }],
    ['a time that is not ISO 8601', { time: 'yesterday' }],
    ['an empty log', { log: '' }],
  ])('refuse to sign %s', (_what, change) => {
    expect(() => signCheckpoint({ ...cp, ...change } as Checkpoint, sign)).toThrow(TypeError);
  });

  it('chain: the hash is base64url SHA-256 of the canonical bytes and changes with any member', () => {
    expect(checkpointHash(cp)).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(checkpointHash({ ...cp })).toBe(checkpointHash(cp));
    expect(checkpointHash({ ...cp, size: 3 })).not.toBe(checkpointHash(cp));
  });
});
