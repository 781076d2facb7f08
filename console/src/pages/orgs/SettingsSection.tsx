/**
 * The current org's settings: its name and whether members must have a second factor. A member
 * whose role may not change them sees them read-only, with a note naming the role needed.
 */
import { useQuery } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { useAction } from '../../api/mutate.ts';
import { allows } from '../../api/roles.ts';
import { ApiErrorNotice, Button, Field, Notice, RoleNote, Section } from '../../components/index.ts';

export function SettingsSection({ org, role }: { org: string; role: string }) {
  const manage = allows(role, 'org.update');
  const detail = useQuery({ queryKey: ['orgs', org], queryFn: () => unwrap(api.GET('/v1/orgs/{org}', { params: { path: { org } } })) });
  const [name, setName] = useState<string | null>(null);
  const [requireMfa, setRequireMfa] = useState<boolean | null>(null);
  const save = useAction(
    () =>
      unwrap(
        api.PATCH('/v1/orgs/{org}', {
          params: { path: { org } },
          body: { ...(name !== null ? { name: name.trim() } : {}), ...(requireMfa !== null ? { requireMfa } : {}) },
        }),
      ),
    [['orgs']],
  );
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (manage) save.mutate(undefined);
  };
  return (
    <Section title="Settings">
      <ApiErrorNotice error={detail.error} />
      {detail.data ? (
        <form className="form" onSubmit={submit} aria-label="Organisation settings">
          <Field label="Organisation name" required maxLength={100} readOnly={!manage} value={name ?? detail.data.name} onChange={(e) => setName(e.target.value)} />
          <label className="check">
            <input type="checkbox" disabled={!manage} checked={requireMfa ?? detail.data.requireMfa} onChange={(e) => setRequireMfa(e.target.checked)} />
            Require a second factor of every member (you need one yourself to turn this on)
          </label>
          {manage ? (
            <>
              <ApiErrorNotice error={save.error} title="Settings not saved" />
              {save.isSuccess ? <Notice tone="success">Settings saved.</Notice> : null}
              <Button type="submit" variant="primary" busy={save.isPending}>
                Save settings
              </Button>
            </>
          ) : (
            <RoleNote role={role} permission="org.update" action="Changing the organisation's settings" />
          )}
        </form>
      ) : null}
    </Section>
  );
}
