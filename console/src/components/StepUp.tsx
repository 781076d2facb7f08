/**
 * Step-up: actions the API guards with a recent second factor (MFA_STEP_UP_REQUIRED) ask for one
 * in a dialog (authenticator code, recovery code or passkey) and are then tried again.
 * @example const stepUp = useStepUp(); await stepUp.run(() => unwrap(api.DELETE(...))); ... {stepUp.dialog}
 */
import { useRef, useState, type FormEvent, type ReactNode } from 'react';
import { api, ApiError, unwrap } from '../api/client.ts';
import { getAssertion } from '../api/webauthn.ts';
import { Button } from './Button.tsx';
import { Dialog } from './Dialog.tsx';
import { Field } from './Field.tsx';
import { ApiErrorNotice } from './Notice.tsx';

export function useStepUp(): { run: <T>(action: () => Promise<T>) => Promise<T>; dialog: ReactNode } {
  const [open, setOpen] = useState(false);
  const [code, setCode] = useState('');
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const pending = useRef<{ resolve: () => void; reject: (err: unknown) => void } | null>(null);

  const run = async <T,>(action: () => Promise<T>): Promise<T> => {
    try {
      return await action();
    } catch (err) {
      if (!(err instanceof ApiError) || err.code !== 'MFA_STEP_UP_REQUIRED') throw err;
      await new Promise<void>((resolve, reject) => {
        pending.current = { resolve, reject };
        setCode('');
        setError(null);
        setOpen(true);
      });
      return action();
    }
  };

  const prove = async (proof: Record<string, unknown>) => {
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/v1/me/mfa/step-up', { body: proof as never }));
      setOpen(false);
      pending.current?.resolve();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const submit = (event: FormEvent) => {
    event.preventDefault();
    const value = code.trim();
    void prove(/^[0-9]{6}$/.test(value) ? { code: value } : { recoveryCode: value });
  };
  const passkey = async () => {
    try {
      const options = await unwrap(api.POST('/v1/me/mfa/step-up/webauthn/options', { body: {} }));
      await prove({ webauthn: await getAssertion(options) });
    } catch (err) {
      setError(err);
    }
  };
  const cancel = () => {
    setOpen(false);
    pending.current?.reject(new ApiError(403, 'MFA_STEP_UP_REQUIRED', 'Cancelled: this action needs your second factor.', undefined));
  };

  const dialog = (
    <Dialog open={open} title="Confirm it's you" onClose={cancel}>
      <p>This action needs your second factor again.</p>
      <form className="form" onSubmit={submit} aria-label="Confirm with a code">
        <Field label="Authenticator or recovery code" name="step-up-code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
        <div className="row">
          <Button type="submit" variant="primary" busy={busy}>
            Confirm
          </Button>
          <Button onClick={() => void passkey()}>Use a passkey</Button>
          <Button variant="quiet" onClick={cancel}>
            Cancel
          </Button>
        </div>
      </form>
      <ApiErrorNotice error={error} title="Not confirmed" />
    </Dialog>
  );
  return { run, dialog };
}
