/**
 * The audit feature's second public surface: the offline verifier of an exported log, for
 * `gatehouse audit verify` and anyone checking an export away from the node. It imports nothing
 * that reaches a database, a cache or the network (test/audit/verify.test.ts checks), which is
 * why it is not index.ts (that one brings the log and its storage with it).
 */
export { signedCheckpointSchema, type SignedCheckpoint } from './checkpoint.ts';
export { VERDICT_EXIT_CODES } from './verify-pins.ts';
export { formatReport, verifyExport, type TrustedKey, type VerifyPins } from './verify.ts';
