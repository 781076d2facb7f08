/**
 * Mail-queue pruning is a scheduled job (AUTH-2, EDGE-7): `mail.prune` deletes sent and given-up
 * messages older than mail.retentionDays when the scheduler (or `gatehouse jobs run`, or the cron
 * endpoint) runs it, under the job lock and in the job history; the sender no longer prunes on a
 * timer of its own.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JOBS } from '../../src/jobs/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { signUpUser } from '../support/users.ts';

let t: TestApp;
let clock = Date.now();
const DAY = 86_400_000;

beforeAll(async () => {
  t = await createTestApp({ overrides: { 'rateLimit.enabled': false, 'mail.retentionDays': 7 }, now: () => clock });
});
afterAll(async () => t.close());

const rows = async (): Promise<{ status: string }[]> => (await t.node.db.asOwner((tx) => tx.query<{ status: string }>('select status from mail_queue order by created_at'))).rows;

describe('the mail.prune job', () => {
  it('is a declared job with a schedule; the sender leaves old rows alone and the job deletes sent rows past mail.retentionDays, recorded in the job history', async () => {
    const jobs = t.node.use(JOBS);
    const listed = (await jobs.list()).find((j) => j.name === 'mail.prune');
    expect(listed).toMatchObject({ name: 'mail.prune', schedule: '41 * * * *' });

    await signUpUser(t.app, t.mail, 'prune-old@example.com');
    await t.node.identity.mailer.flush();
    const sent = (await rows()).filter((r) => r.status === 'sent').length;
    expect(sent).toBeGreaterThan(0);

    // Eight days later: a new message is queued and sent; the sender's passes prune nothing.
    clock += 8 * DAY;
    await signUpUser(t.app, t.mail, 'prune-new@example.com');
    await t.node.identity.mailer.flush();
    expect((await rows()).filter((r) => r.status === 'sent').length).toBe(sent * 2);

    const run = await jobs.run('mail.prune', 'cli');
    expect(run).toMatchObject({ status: 'succeeded', summary: { removed: sent } });
    expect((await rows()).filter((r) => r.status === 'sent').length).toBe(sent);
    const history = await jobs.history({ job: 'mail.prune', limit: 5 });
    expect(history[0]).toMatchObject({ job: 'mail.prune', trigger: 'cli', outcome: 'succeeded', summary: { removed: sent } });
  });
});
