/** The shapes of the trust report (OPS-4) and of the checks that feed it. */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { Config } from '../config/schema.ts';
import type { Keyring } from '../keyring/keyring.ts';
import type { SigningKeys } from '../keyring/signing-keys.ts';
import type { Db } from '../store/db-types.ts';
import type { Kv } from '../store/kv/types.ts';

/**
 * What a check found, from best to worst for the combined entry: `active` (checked now and working),
 * `off` (turned off by configuration), `not verified` (the check could not run: it says why, and
 * claims nothing), `misconfigured` (on, but set up so that it does not protect as it should),
 * `failed` (checked now and broken).
 */
export const CONTROL_STATES = ['active', 'off', 'not verified', 'misconfigured', 'failed'] as const;
export type ControlState = (typeof CONTROL_STATES)[number];

export interface TrustCheckResult {
  state: ControlState;
  /** What was observed, one short fact per line (no secret, no value of a secret). */
  evidence: string[];
  /** Why the state is not `active`. */
  why?: string;
}

/** What a check may use: the running configuration and the node's services, read at report time. */
export interface TrustCheckContext {
  /** The configuration running when the report started (reloads included). */
  config: Config;
  db: Db;
  kv: Kv;
  keyring: Keyring;
  signingKeys: SigningKeys;
  logger: Logger;
  now: () => number;
  /** The server: its route table and `inject` for a real request to itself. Undefined before it is built. */
  app: FastifyInstance | undefined;
}

/**
 * One live check of one control. Features add theirs through the `TRUST_CHECKS` hook point of
 * src/trust/index.ts (see there); several checks of one control combine into its entry, whose
 * state is the worst of theirs.
 */
export interface TrustCheck {
  /** The catalog ID of ../shared/PRODUCT.md the check is evidence for, e.g. `BUDGET-1`. */
  control: string;
  /** Short name of what is checked, e.g. `tls-handshake`. */
  name: string;
  /** Title of the control, used when the control is not in the built-in list (a feature's own). */
  title?: string;
  /** Runs the check now. A throw is reported as `not verified` with the error's class, never as active. */
  run: (ctx: TrustCheckContext) => Promise<TrustCheckResult>;
}

export interface TrustCheckEntry extends TrustCheckResult {
  name: string;
  ms: number;
}

export interface TrustEntry {
  control: string;
  title: string;
  state: ControlState;
  checks: TrustCheckEntry[];
}

export interface TrustReportBody {
  format: 'gatehouse-trust-report/1';
  generatedAt: string;
  /** The public URL of the node, as configured. */
  origin: string;
  /** SHA-256 of the running configuration with secrets masked. */
  configSha256: string;
  summary: Record<ControlState, number>;
  controls: TrustEntry[];
  organisational: { promise: string; state: 'organisational — not verifiable by this software' }[];
  /** True for the public variant: evidence removed. */
  redacted: boolean;
}

/** The report with its Ed25519 signature (audit-checkpoint key) over the RFC 8785 bytes of `report`. */
export interface SignedTrustReport {
  report: TrustReportBody;
  signature: { alg: 'EdDSA'; kid: string; value: string };
}
