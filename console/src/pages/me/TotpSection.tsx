/**
 * Authenticator app (TOTP) enrolment with its QR code, its removal (by the factor id GET /v1/me
 * gives, after a step-up when the last second factor is stale), and recovery codes. The QR code is the
 * PNG data: URL the API draws for the otpauth URI (an image: the CSP's img-src allows data:);
 * the secret is also shown as text for apps that cannot scan.
 */
import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ME_KEY, type Me } from '../../api/session.ts';
import { ApiErrorNotice, Button, ConfirmDialog, CopyButton, Field, Notice, Section, useStepUp } from '../../components/index.ts';
import { useAction } from './useAction.ts';

interface Enrolment {
  factorId: string;
  otpauthUri: string;
  qrCodeDataUrl: string;
}

function secretOf(uri: string): string {
  try {
    return new URL(uri).searchParams.get('secret') ?? '';
  } catch {
    return '';
  }
}

export function TotpSection({ me }: { me: NonNullable<Me> }) {
  const queryClient = useQueryClient();
  const [password, setPassword] = useState('');
  const [code, setCode] = useState('');
  const [enrolment, setEnrolment] = useState<Enrolment | null>(null);
  const [codes, setCodes] = useState<string[] | null>(null);
  const [removing, setRemoving] = useState(false);
  const action = useAction();
  const stepUp = useStepUp();

  const start = (event: FormEvent) => {
    event.preventDefault();
    void action.run(async () => {
      setEnrolment(await unwrap(api.POST('/v1/me/mfa/totp', { body: { password } })));
      setPassword('');
    });
  };
  const confirm = (event: FormEvent) => {
    event.preventDefault();
    if (!enrolment) return;
    void action.run(async () => {
      await unwrap(api.POST('/v1/me/mfa/totp/confirm', { body: { factorId: enrolment.factorId, code: code.trim() } }));
      setEnrolment(null);
      setCode('');
      await queryClient.invalidateQueries({ queryKey: ME_KEY });
      return 'Authenticator app added: sign-ins now ask for its code.';
    });
  };
  const remove = () => {
    const id = me.mfa.totpFactorId;
    if (!id) return;
    void action.run(async () => {
      await stepUp.run(() => unwrap(api.DELETE('/v1/me/mfa/totp/{id}', { params: { path: { id } } })));
      setRemoving(false);
      setCodes(null);
      await queryClient.invalidateQueries({ queryKey: ME_KEY });
      return 'Authenticator app removed: sign-ins no longer ask for its code.';
    });
  };
  const newCodes = () =>
    void action.run(async () => {
      const result = await stepUp.run(() => unwrap(api.POST('/v1/me/mfa/recovery-codes', { body: {} })));
      setCodes(result.recoveryCodes);
      await queryClient.invalidateQueries({ queryKey: ME_KEY });
    });

  return (
    <Section title="Authenticator app and recovery codes">
      <p>{me.mfa.totp ? 'An authenticator app is set up for this account.' : 'No authenticator app is set up yet.'}</p>
      {enrolment ? (
        <div className="enrol">
          <img className="qr" src={enrolment.qrCodeDataUrl} alt="QR code to scan with your authenticator app" width={192} height={192} />
          <p>
            Can&apos;t scan? Enter this key: <code className="secret">{secretOf(enrolment.otpauthUri)}</code> <CopyButton value={secretOf(enrolment.otpauthUri)} label="Copy key" />
          </p>
          <form className="form" onSubmit={confirm} aria-label="Confirm your authenticator app">
            <Field label="Code from the app" name="totp-code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required value={code} onChange={(e) => setCode(e.target.value)} />
            <Button type="submit" variant="primary" busy={action.busy}>
              Confirm and turn on
            </Button>
          </form>
        </div>
      ) : me.mfa.totp ? (
        <Button variant="danger" onClick={() => setRemoving(true)} disabled={!me.mfa.totpFactorId}>
          Remove the authenticator app
        </Button>
      ) : (
        <form className="form" onSubmit={start} aria-label="Set up an authenticator app">
          <Field label="Current password" type="password" name="totp-password" autoComplete="current-password" required value={password} onChange={(e) => setPassword(e.target.value)} />
          <Button type="submit" busy={action.busy}>
            Set up an authenticator app
          </Button>
        </form>
      )}
      <h3>Recovery codes</h3>
      <p>{me.mfa.recoveryCodesLeft} unused recovery codes. Each one signs you in once when your other factors are not at hand.</p>
      {codes ? (
        <Notice tone="warning" title="Save these codes now: they are shown only once">
          <ol className="codes" aria-label="Recovery codes">
            {codes.map((c) => (
              <li key={c}>{c}</li>
            ))}
          </ol>
          <CopyButton value={codes.join('\n')} label="Copy codes" />
        </Notice>
      ) : null}
      <Button onClick={newCodes} busy={action.busy}>
        Generate new recovery codes
      </Button>
      {action.done ? <Notice tone="success">{action.done}</Notice> : null}
      <ApiErrorNotice error={action.error} />
      <ConfirmDialog open={removing} title="Remove the authenticator app?" confirmLabel="Remove app" danger busy={action.busy} onConfirm={remove} onCancel={() => setRemoving(false)}>
        <p>Sign-ins stop asking for its code. Without a passkey left, your recovery codes stop working too.</p>
      </ConfirmDialog>
      {stepUp.dialog}
    </Section>
  );
}
