/** The second step of a sign-in: a TOTP code or a recovery code for the challenge's mfaToken. */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { ApiErrorNotice, Button, Field, Page, Section } from '../../components/index.ts';

export interface MfaChallenge {
  mfaToken: string;
  methods: ReadonlyArray<'totp' | 'recovery' | 'webauthn'>;
}

export function SecondStep({ challenge, onDone, onRestart }: { challenge: MfaChallenge; onDone: () => Promise<void>; onRestart: () => void }) {
  const [code, setCode] = useState('');
  const [useRecovery, setUseRecovery] = useState(!challenge.methods.includes('totp'));
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const proof = useRecovery ? { recoveryCode: code.trim() } : { code: code.trim() };
      await unwrap(api.POST('/v1/auth/mfa/verify', { body: { mfaToken: challenge.mfaToken, ...proof } }));
      await onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Page title="Second step" intro="Your account has a second factor: confirm it's you.">
      <Section title={useRecovery ? 'Recovery code' : 'Authenticator app'}>
        <form className="form" onSubmit={(e) => void submit(e)} aria-label="Second step">
          {useRecovery ? (
            <Field label="Recovery code" name="recoveryCode" autoComplete="off" required value={code} onChange={(e) => setCode(e.target.value)} />
          ) : (
            <Field label="Six-digit code" name="code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required value={code} onChange={(e) => setCode(e.target.value)} />
          )}
          <ApiErrorNotice error={error} title="Second step refused" />
          <div className="row">
            <Button type="submit" variant="primary" busy={busy}>
              Continue
            </Button>
            {challenge.methods.includes('totp') && challenge.methods.includes('recovery') ? (
              <Button variant="quiet" onClick={() => { setUseRecovery(!useRecovery); setCode(''); }}>
                {useRecovery ? 'Use the authenticator app' : 'Use a recovery code'}
              </Button>
            ) : null}
            <Button variant="quiet" onClick={onRestart}>
              Start again
            </Button>
          </div>
        </form>
      </Section>
    </Page>
  );
}
