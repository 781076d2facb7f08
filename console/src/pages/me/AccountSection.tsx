/** Profile and email change (the new address confirms with a mailed code). */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ME_KEY, type Me } from '../../api/session.ts';
import { ApiErrorNotice, Button, Field, Notice, Section } from '../../components/index.ts';
import { useAction } from './useAction.ts';

export function AccountSection({ me }: { me: NonNullable<Me> }) {
  const queryClient = useQueryClient();
  const [email, setEmail] = useState('');
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [asked, setAsked] = useState(false);
  const action = useAction();

  const ask = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      await unwrap(api.POST('/v1/me/email', { body: { email, password } }));
      setAsked(true);
      setPassword('');
      return `A confirmation code is on its way to ${email}.`;
    });
  };
  const confirm = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      await unwrap(api.POST('/v1/auth/email-change/confirm', { body: { token: code.trim() } }));
      setAsked(false);
      setCode('');
      await queryClient.invalidateQueries({ queryKey: ME_KEY });
      return 'Your email address was changed.';
    });
  };

  return (
    <Section title="Profile">
      <dl className="facts">
        <dt>Email</dt>
        <dd>{me.email}</dd>
        <dt>Email verified</dt>
        <dd>{me.emailVerified ? 'Yes' : 'No'}</dd>
        <dt>Account created</dt>
        <dd>{new Date(me.createdAt).toLocaleString('en')}</dd>
        <dt>Second factors</dt>
        <dd>
          {me.mfa.totp ? 'Authenticator app' : 'No authenticator app'} · {me.mfa.passkeys} passkey{me.mfa.passkeys === 1 ? '' : 's'} · {me.mfa.recoveryCodesLeft} recovery codes left
        </dd>
      </dl>
      <h3>Change your email</h3>
      {asked ? (
        <form className="form" onSubmit={confirm} aria-label="Confirm the new email">
          <Field label="Confirmation code" name="email-code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
          <Button type="submit" variant="primary" busy={action.busy}>
            Confirm new email
          </Button>
        </form>
      ) : (
        <form className="form" onSubmit={ask} aria-label="Change your email">
          <Field label="New email" type="email" name="new-email" autoComplete="email" required value={email} onChange={(e) => setEmail(e.target.value)} />
          <Field label="Current password" type="password" name="email-password" autoComplete="current-password" value={password} onChange={(e) => setPassword(e.target.value)} />
          <Button type="submit" busy={action.busy}>
            Send confirmation code
          </Button>
        </form>
      )}
      {action.done ? <Notice tone="success">{action.done}</Notice> : null}
      <ApiErrorNotice error={action.error} />
    </Section>
  );
}
