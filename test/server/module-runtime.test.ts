/**
 * The feature-module runtime (src/server/module-runtime.ts): dependency order, refusals that name
 * the problem, hook points, jobs, and closing in reverse order exactly once.
 */
import { describe, expect, it } from 'vitest';
import { defineModule, hook, hookPoint, moduleRef, type FeatureModule, type ModuleContext } from '../../src/server/module.ts';
import { createModules, orderModules, type CoreServices } from '../../src/server/module-runtime.ts';

const core = { now: Date.now, overrides: {} } as unknown as CoreServices;
const A = moduleRef<{ a: number }>('a');
const B = moduleRef<{ b: number }>('b');
const C = moduleRef<undefined>('c');
const NAMES = hookPoint<(x: string) => string>('test.names');

function recordingModules(log: string[]): FeatureModule[] {
  const a = defineModule({ ref: A, dependsOn: [], create: () => (log.push('create a'), { api: { a: 1 }, close: async () => void log.push('close a') }) });
  const b = defineModule({
    ref: B,
    dependsOn: [A],
    create: (ctx) => (log.push(`create b with a=${ctx.use(A).a}`), { api: { b: 2 }, hooks: [hook(NAMES, (x) => `b:${x}`)], close: async () => void log.push('close b') }),
  });
  const c = defineModule({ ref: C, dependsOn: [B], create: () => (log.push('create c'), { api: undefined, hooks: [hook(NAMES, (x) => `c:${x}`)], close: async () => void log.push('close c') }) });
  return [c, b, a];
}

describe('feature-module runtime', () => {
  it('creates modules after their dependencies and closes them in reverse order, once', async () => {
    const log: string[] = [];
    const created = await createModules(recordingModules(log), core, () => undefined);
    expect(log).toEqual(['create a', 'create b with a=1', 'create c']);
    expect(created.use(B)).toEqual({ b: 2 });
    await Promise.all([created.close(() => undefined), created.close(() => undefined)]);
    await created.close(() => undefined);
    expect(log.slice(3)).toEqual(['close c', 'close b', 'close a']);
  });

  it('keeps the listed order among modules free to go', () => {
    const free = (id: string): FeatureModule => defineModule({ ref: moduleRef(id), dependsOn: [], create: () => ({ api: undefined }) });
    expect(orderModules([free('x'), free('y'), free('z')]).map((m) => m.ref.id)).toEqual(['x', 'y', 'z']);
  });

  it('hook points list what later modules added, in creation order, read at call time', async () => {
    let offered: ModuleContext | undefined;
    const offering = defineModule({ ref: moduleRef('offering'), dependsOn: [], create: (ctx) => ((offered = ctx), { api: undefined }) });
    const [c, b, a] = recordingModules([]);
    await createModules([offering, a, b, c] as FeatureModule[], core, () => undefined);
    expect((offered as ModuleContext).hooks.list(NAMES).map((fn) => fn('x'))).toEqual(['b:x', 'c:x']);
  });

  it('refuses a dependency that is not listed, naming both modules', () => {
    const lonely = defineModule({ ref: moduleRef('lonely'), dependsOn: [A], create: () => ({ api: undefined }) });
    expect(() => orderModules([lonely])).toThrow('feature module "lonely" depends on "a", which is not listed in src/features.ts');
  });

  it('refuses a dependency cycle, naming its path', () => {
    const X = moduleRef('x');
    const Y = moduleRef('y');
    const x = defineModule({ ref: X, dependsOn: [Y], create: () => ({ api: undefined }) });
    const y = defineModule({ ref: Y, dependsOn: [X], create: () => ({ api: undefined }) });
    expect(() => orderModules([x, y])).toThrow('cycle: x -> y -> x');
  });

  it('refuses a module listed twice', () => {
    const a = defineModule({ ref: A, dependsOn: [], create: () => ({ api: { a: 1 } }) });
    expect(() => orderModules([a, a])).toThrow('feature module "a" is listed twice');
  });

  it('refuses use() of a module not declared in dependsOn', async () => {
    const a = defineModule({ ref: A, dependsOn: [], create: () => ({ api: { a: 1 } }) });
    const sneaky = defineModule({ ref: moduleRef('sneaky'), dependsOn: [], create: (ctx) => ({ api: ctx.use(A) }) });
    await expect(createModules([a, sneaky], core, () => undefined)).rejects.toThrow('feature module "sneaky" uses "a" without declaring it in dependsOn');
  });

  it('closes the modules already created when a later one fails to start', async () => {
    const log: string[] = [];
    const [, b, a] = recordingModules(log);
    const broken = defineModule({ ref: moduleRef('broken'), dependsOn: [B], create: () => Promise.reject(new Error('no such thing')) });
    await expect(createModules([a, b, broken] as FeatureModule[], core, () => undefined)).rejects.toThrow('no such thing');
    expect(log).toEqual(['create a', 'create b with a=1', 'close b', 'close a']);
  });

  it('refuses two modules declaring the same verifier or the same job', async () => {
    const v = (id: string): FeatureModule => defineModule({ ref: moduleRef(id), dependsOn: [], create: () => ({ api: undefined, verifiers: { session: async () => null } }) });
    await expect(createModules([v('one'), v('two')], core, () => undefined)).rejects.toThrow('feature module "two" declares the session verifier another module declared');
    const job = { name: 'sweep', schedule: '* * * * *', summary: 'x', run: async () => undefined };
    const j = (id: string): FeatureModule => defineModule({ ref: moduleRef(id), dependsOn: [], create: () => ({ api: undefined, jobs: [job] }) });
    await expect(createModules([j('one'), j('two')], core, () => undefined)).rejects.toThrow('feature module "two" declares the job "sweep" another module declared');
  });

  it('hands every module the audit actions of all listed modules before creating any, and refuses a duplicate or malformed one', async () => {
    const seen: string[][] = [];
    const declaring = (id: string, actions: string[], deps: FeatureModule[] = []): FeatureModule =>
      defineModule({ ref: moduleRef(id), dependsOn: deps.map((d) => d.ref), auditActions: actions, create: (ctx) => (seen.push([id, ...ctx.auditActions]), { api: undefined }) });
    const first = declaring('first', ['first.done']);
    const second = declaring('second', ['second.made', 'second.gone'], [first]);
    const created = await createModules([second, first], core, () => undefined);
    // The first module created already sees the actions of the one created after it.
    expect(seen).toEqual([
      ['first', 'first.done', 'second.made', 'second.gone'],
      ['second', 'first.done', 'second.made', 'second.gone'],
    ]);
    expect(created.auditActions).toEqual(['first.done', 'second.made', 'second.gone']);
    await expect(createModules([first, declaring('copy', ['first.done'])], core, () => undefined)).rejects.toThrow('feature module "copy" declares the audit action "first.done", which "first" declares: each action has one owner');
    for (const bad of ['nodot', 'Upper.case', 'a..b', 'a.b-c', '.a.b']) {
      await expect(createModules([declaring('odd', [bad])], core, () => undefined)).rejects.toThrow(`declares the audit action "${bad}", which is not of the form area.event`);
    }
  });

  it('a close that fails is reported and the others still close', async () => {
    const log: string[] = [];
    const a = defineModule({ ref: A, dependsOn: [], create: () => ({ api: { a: 1 }, close: async () => void log.push('close a') }) });
    const bad = defineModule({ ref: moduleRef('bad'), dependsOn: [A], create: () => ({ api: undefined, close: () => Promise.reject(new Error('stuck')) }) });
    const created = await createModules([a, bad], core, () => undefined);
    const errors: string[] = [];
    await created.close((module, err) => errors.push(`${module}: ${(err as Error).message}`));
    expect(errors).toEqual(['bad: stuck']);
    expect(log).toEqual(['close a']);
  });
});
