/** The built-in classifier's weights (src/guard/model.json, written by scripts/train-guard.ts), loaded once. */
import { readFileSync } from 'node:fs';
import { compileModel, type CompiledModel } from './classifier.ts';

let builtin: CompiledModel | undefined;

/** The classifier trained by scripts/train-guard.ts, loaded once from src/guard/model.json. */
export function builtinModel(): CompiledModel {
  builtin ??= compileModel(JSON.parse(readFileSync(new URL('./model.json', import.meta.url), 'utf8')));
  return builtin;
}
