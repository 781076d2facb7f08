/**
 * The org's budgets with their use in the current period, and (for a role that may change them) a
 * form to set one and a delete action per budget; other members see the budgets only.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { ApiErrorNotice, Button, Field, RoleNote, Section, SelectField, Table } from '../../components/index.ts';

const CATEGORIES = ['ai_tokens', 'ai_cost', 'embedding_tokens', 'files', 'file_bytes', 'messages', 'tool_calls'] as const;
type Category = (typeof CATEGORIES)[number];

export function Budgets({ org, role, workspaces }: { org: string; role: string; workspaces: ReadonlyArray<{ id: string; name: string }> }) {
  const manage = allows(role, 'budgets.manage');
  const key = ['budgets', org];
  const list = useQuery({ queryKey: key, queryFn: async () => (await unwrap(api.GET('/v1/orgs/{org}/budgets', { params: { path: { org } } }))).budgets });
  const [category, setCategory] = useState<Category>('ai_tokens');
  const [period, setPeriod] = useState<'day' | 'month'>('month');
  const [scopeWs, setScopeWs] = useState('');
  const [hard, setHard] = useState('');
  const save = useAction(
    () => unwrap(api.PUT('/v1/orgs/{org}/budgets', { params: { path: { org } }, body: { category, period, workspaceId: scopeWs || null, hardLimit: Number(hard) } })),
    [key],
  );
  const remove = useAction((budget: string) => unwrap(api.DELETE('/v1/orgs/{org}/budgets/{budget}', { params: { path: { org, budget } } })), [key]);
  type Budget = NonNullable<typeof list.data>[number];
  const submit = (event: FormEvent) => {
    event.preventDefault();
    save.mutate(undefined);
  };
  const scopeOf = (b: { workspaceId: string | null; apiKeyId: string | null }) =>
    b.apiKeyId ? `Key ${b.apiKeyId}` : b.workspaceId ? `Workspace ${workspaces.find((w) => w.id === b.workspaceId)?.name ?? b.workspaceId}` : 'Organisation';
  return (
    <Section title="Budgets">
      <ApiErrorNotice error={list.error ?? remove.error} />
      <Table
        caption="Budgets and their use"
        rows={list.data ?? []}
        rowKey={(b) => b.id}
        empty="No budget: nothing is capped."
        columns={[
          { header: 'Applies to', cell: scopeOf },
          { header: 'Category', cell: (b) => b.category },
          { header: 'Period', cell: (b) => b.period },
          {
            header: 'Used',
            cell: (b) => (
              <>
                <meter className="meter" min={0} max={b.hardLimit} value={Math.min(b.used, b.hardLimit)} aria-label={`${b.category} used`} /> {b.used.toLocaleString('en')} of {b.hardLimit.toLocaleString('en')}
              </>
            ),
          },
          { header: 'Resets', cell: (b) => new Date(b.resetAt).toLocaleString('en') },
          ...(manage ? [{ header: 'Actions', cell: (b: Budget) => <Button onClick={() => remove.mutate(b.id)} aria-label={`Delete the ${b.category} budget of ${scopeOf(b)}`}>Delete</Button> }] : []),
        ]}
      />
      {manage ? (
        <form className="form" onSubmit={submit} aria-label="Set a budget">
          <SelectField label="Applies to" value={scopeWs} onChange={(e) => setScopeWs(e.target.value)} options={[{ value: '', label: 'The whole organisation' }, ...workspaces.map((w) => ({ value: w.id, label: `Workspace ${w.name}` }))]} />
          <SelectField label="Category" value={category} onChange={(e) => setCategory(e.target.value as Category)} options={CATEGORIES.map((c) => ({ value: c, label: c }))} />
          <SelectField label="Period" value={period} onChange={(e) => setPeriod(e.target.value as 'day' | 'month')} options={[{ value: 'month', label: 'Month' }, { value: 'day', label: 'Day' }]} />
          <Field label="Hard limit" type="number" min={0} required inputMode="numeric" value={hard} onChange={(e) => setHard(e.target.value)} />
          <ApiErrorNotice error={save.error} title="Budget not saved" />
          <Button type="submit" variant="primary" busy={save.isPending}>
            Save budget
          </Button>
        </form>
      ) : (
        <RoleNote role={role} permission="budgets.manage" action="Setting or deleting a budget" />
      )}
    </Section>
  );
}
