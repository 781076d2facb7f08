/** The second step of a sign-in: a TOTP code, a recovery code or a passkey, for the challenge's mfaToken. */
import { useState, type FormEvent } from 'react';
import { api, unwrap } from '../../api/client.ts';
import { getAssertion } from '../../api/webauthn.ts';
import { ApiErrorNotice, Button, Field, Page, Section } from '../../components/index.ts';

export interface MfaChallenge {
  mfaToken: string;
  methods: ReadonlyArray<'totp' | 'recovery' | 'webauthn'>;
}

type Method = 'totp' | 'recovery';

export function SecondStep({ challenge, onDone, onRestart }: { challenge: MfaChallenge; onDone: () => Promise<void>; onRestart: () => void }) {
  const [code, setCode] = useState('');
  const [method, setMethod] = useState<Method>(challenge.methods.includes('totp') ? 'totp' : 'recovery');
  const [busy, setBusy] = useState<'code' | 'passkey' | null>(null);
  const [error, setError] = useState<unknown>(null);

  const verify = async (proof: { code: string } | { recoveryCode: string } | { webauthn: unknown }, which: 'code' | 'passkey') => {
    setBusy(which);
    setError(null);
    try {
      await unwrap(api.POST('/v1/auth/mfa/verify', { body: { mfaToken: challenge.mfaToken, ...proof } as never }));
      await onDone();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(null);
    }
  };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void verify(method === 'recovery' ? { recoveryCode: code.trim() } : { code: code.trim() }, 'code');
  };

  const passkey = async () => {
    try {
      const options = await unwrap(api.POST('/v1/auth/mfa/webauthn/options', { body: { mfaToken: challenge.mfaToken } }));
      await verify({ webauthn: await getAssertion(options) }, 'passkey');
    } catch (err) {
      setError(err);
    }
  };

  const other: Method = method === 'totp' ? 'recovery' : 'totp';
  return (
    <Page title="Second step" intro="Your account has a second factor: confirm it's you.">
      {challenge.methods.includes('webauthn') ? (
        <Section title="Passkey">
          <Button variant="primary" onClick={() => void passkey()} busy={busy === 'passkey'}>
            Use a passkey
          </Button>
        </Section>
      ) : null}
      {challenge.methods.includes('totp') || challenge.methods.includes('recovery') ? (
        <Section title={method === 'recovery' ? 'Recovery code' : 'Authenticator app'}>
          <form className="form" onSubmit={submit} aria-label="Second step with a code">
            {method === 'recovery' ? (
              <Field label="Recovery code" name="recoveryCode" autoComplete="off" required value={code} onChange={(e) => setCode(e.target.value)} />
            ) : (
              <Field label="Six-digit code" name="code" inputMode="numeric" autoComplete="one-time-code" pattern="[0-9]{6}" required value={code} onChange={(e) => setCode(e.target.value)} />
            )}
            <div className="row">
              <Button type="submit" variant="primary" busy={busy === 'code'}>
                Continue
              </Button>
              {challenge.methods.includes(other) ? (
                <Button
                  variant="quiet"
                  onClick={() => {
                    setMethod(other);
                    setCode('');
                  }}
                >
                  {other === 'recovery' ? 'Use a recovery code' : 'Use the authenticator app'}
                </Button>
              ) : null}
            </div>
          </form>
        </Section>
      ) : null}
      <ApiErrorNotice error={error} title="Second step refused" />
      <Button variant="quiet" onClick={onRestart}>
        Start again
      </Button>
    </Page>
  );
}
