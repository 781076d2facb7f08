/**
 * `gatehouse audit verify <file> [--keys <jwks.json>]`: the offline verifier on an export file.
 * Exit codes: 0 verified, 1 the file failed verification, 2 the file or the keys file could not
 * be read. Needs no configuration, database or network.
 */
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { ed25519Thumbprint } from '../crypto/signing.ts';
import { formatReport, verifyExport } from '../audit/verify.ts';

export type Out = (line: string) => void;

export interface AuditVerifyOptions {
  /** A JWKS (`{"keys":[...]}`, as `/.well-known/jwks.json` serves it) or one JWK to pin. */
  trustedKeysFile?: string;
}

const X_RE = /^[A-Za-z0-9_-]{43}$/;

/** The kids of the Ed25519 keys in a JWKS or single JWK; other key types are ignored. */
export function trustedKidsOf(json: unknown): string[] {
  const keys: unknown[] = Array.isArray((json as { keys?: unknown } | null)?.keys) ? (json as { keys: unknown[] }).keys : [json];
  const kids: string[] = [];
  for (const key of keys) {
    const { kty, crv, x } = (key ?? {}) as Record<string, unknown>;
    // The kid is recomputed from the key, never taken from the file: pinning is of keys.
    if (kty === 'OKP' && crv === 'Ed25519' && typeof x === 'string' && X_RE.test(x)) kids.push(ed25519Thumbprint(x));
  }
  return kids;
}

/**
 * Verifies an export file and writes the report; returns the exit code.
 * @example process.exitCode = await runAuditVerify('audit.jsonl', { trustedKeysFile: 'jwks.json' }, console.log);
 */
export async function runAuditVerify(file: string, options: AuditVerifyOptions, out: Out, errOut: Out = out): Promise<number> {
  let trustedKids: string[] | undefined;
  if (options.trustedKeysFile !== undefined) {
    try {
      trustedKids = trustedKidsOf(JSON.parse(await readFile(options.trustedKeysFile, 'utf8')));
    } catch (err) {
      errOut(`gatehouse: cannot read trusted keys from ${options.trustedKeysFile}: ${(err as Error).message}`);
      return 2;
    }
    if (trustedKids.length === 0) {
      errOut(`gatehouse: ${options.trustedKeysFile} holds no Ed25519 public key`);
      return 2;
    }
  }
  try {
    const info = await stat(file);
    if (!info.isFile()) throw new Error('not a file');
  } catch (err) {
    errOut(`gatehouse: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  let report;
  try {
    report = await verifyExport(createReadStream(file), trustedKids === undefined ? {} : { trustedKids });
  } catch (err) {
    errOut(`gatehouse: cannot read ${file}: ${(err as Error).message}`);
    return 2;
  }
  out(formatReport(report));
  return report.ok ? 0 : 1;
}
