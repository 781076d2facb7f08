import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../src/gateway/errors.ts';
import { listModels, platformProviders, resolveTargets, type RoutableProvider, type WorkspaceRouting } from '../../src/gateway/routing.ts';

const platform = platformProviders(
  [
    { id: 'openai', kind: 'openai', baseUrl: 'https://api.openai.com', models: ['gpt-4o', 'gpt-4o-mini*'] },
    { id: 'anthropic', kind: 'anthropic', baseUrl: 'https://api.anthropic.com', models: ['claude-*'] },
  ],
  { openai: 'platform-openai-key', anthropic: 'platform-anthropic-key' },
);

function own(name: string, models: string[]): RoutableProvider {
  return { label: `workspace:${name}`, name, config: { id: `workspace:ws1:${name}`, kind: 'openai', baseUrl: 'https://api.openai.com' }, models, apiKey: `${name}-key` };
}

function routing(partial: Partial<WorkspaceRouting['settings']> = {}, providers: RoutableProvider[] = []): WorkspaceRouting {
  return { providers, settings: { allowedModels: null, aliases: [], ...partial } };
}

function notFound(fn: () => unknown): boolean {
  try {
    fn();
    return false;
  } catch (err) {
    return isGatewayError(err, 'MODEL_NOT_FOUND');
  }
}

describe('model routing', () => {
  it('routes a model to the first provider of the route\'s format that serves it (exact names and patterns)', () => {
    const r = resolveTargets(routing(), platform, 'openai', 'gpt-4o-mini-2024');
    expect(r.targets.map((t) => [t.provider.id, t.model, t.apiKey])).toEqual([['platform:openai', 'gpt-4o-mini-2024', 'platform-openai-key']]);
    expect(r.labels.get('platform:openai')).toBe('platform:openai');
    expect(resolveTargets(routing(), platform, 'anthropic', 'claude-3-5-haiku').targets[0]?.provider.id).toBe('platform:anthropic');
  });

  it('a workspace\'s own provider comes before the platform\'s', () => {
    const r = resolveTargets(routing({}, [own('mine', ['gpt-4o'])]), platform, 'openai', 'gpt-4o');
    expect(r.targets[0]?.apiKey).toBe('mine-key');
    expect(r.labels.get('workspace:ws1:mine')).toBe('workspace:mine');
  });

  it('unknown models, models of the other format and models the workspace may not call are all MODEL_NOT_FOUND', () => {
    expect(notFound(() => resolveTargets(routing(), platform, 'openai', 'gpt-5'))).toBe(true);
    expect(notFound(() => resolveTargets(routing(), platform, 'anthropic', 'gpt-4o'))).toBe(true);
    expect(notFound(() => resolveTargets(routing({ allowedModels: ['gpt-4o-mini*'] }), platform, 'openai', 'gpt-4o'))).toBe(true);
    expect(resolveTargets(routing({ allowedModels: ['gpt-4o-mini*'] }), platform, 'openai', 'gpt-4o-mini').targets).toHaveLength(1);
  });

  it('an alias is its fallback chain, skipping targets no provider serves; an alias of nothing is MODEL_NOT_FOUND', () => {
    const aliases = [
      {
        name: 'smart',
        targets: [
          { model: 'gpt-4o', provider: 'mine' },
          { model: 'gpt-9', provider: null },
          { model: 'gpt-4o', provider: 'openai' },
        ],
      },
      { name: 'broken', targets: [{ model: 'gpt-9', provider: null }] },
    ];
    const r = resolveTargets(routing({ aliases, allowedModels: [] }, [own('mine', ['gpt-4o'])]), platform, 'openai', 'smart');
    expect(r.targets.map((t) => t.apiKey)).toEqual(['mine-key', 'platform-openai-key']);
    expect(notFound(() => resolveTargets(routing({ aliases }), platform, 'openai', 'broken'))).toBe(true);
  });

  it('answers from its cache for the same routing object, and afresh for a new one', () => {
    const w = routing();
    expect(resolveTargets(w, platform, 'openai', 'gpt-4o')).toBe(resolveTargets(w, platform, 'openai', 'gpt-4o'));
    expect(resolveTargets(routing(), platform, 'openai', 'gpt-4o')).not.toBe(resolveTargets(w, platform, 'openai', 'gpt-4o'));
  });

  it('lists aliases and the exact model names the workspace may call, never patterns', () => {
    const list = listModels(routing({ aliases: [{ name: 'smart', targets: [{ model: 'gpt-4o', provider: null }] }], allowedModels: ['gpt-*'] }), platform);
    expect(list).toEqual([
      { id: 'smart', ownedBy: 'gatehouse' },
      { id: 'gpt-4o', ownedBy: 'openai' },
    ]);
  });
});
