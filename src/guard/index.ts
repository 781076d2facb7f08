/**
 * Public surface of the input guard (ABUSE-3): normalisation and decoding, named rules, a built-in
 * linear classifier shipped as src/guard/model.json, and a pluggable external classifier.
 * Other features import the guard only from here.
 */
export { createGuard, DEFAULT_THRESHOLDS, type Guard, type GuardAction, type GuardOptions, type GuardThresholds, type GuardVerdict } from './guard.ts';
export { httpClassifier, type ExternalClassifier, type ExternalResult, type FailMode, type HttpClassifierOptions } from './external.ts';
export { RULES, type Rule, type RuleCategory } from './rules.ts';
export { normalize } from './normalize.ts';
export { decodeViews } from './decode.ts';
export { redact, REDACTION_MARKER } from './redact.ts';
export { compileModel, classify, features, type CompiledModel, type LinearModel } from './classifier.ts';

export { builtinModel } from './model.ts';
export { GUARD, guardModule, type GuardApi } from './module.ts';
export { GUARD_MODES, DEFAULT_POLICY, type GuardMode, type GuardPolicy } from './policy.ts';
export { userSubject } from './store.ts';
