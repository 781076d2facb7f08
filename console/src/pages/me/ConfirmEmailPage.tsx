/**
 * Confirms a new email address with the code of the email-change mail. The mail's link (?token=)
 * fills the code (and it is wiped from the address); no sign-in is needed, as for the API
 * (POST /v1/auth/email-change/confirm): the code itself proves the address.
 */
import { useState, type FormEvent } from 'react';
import { Link } from 'react-router';
import { api, unwrap } from '../../api/client.ts';
import { useLinkToken } from '../../api/link-token.ts';
import { ApiErrorNotice, Button, Field, Notice, Page, Section } from '../../components/index.ts';

export default function ConfirmEmailPage() {
  const linked = useLinkToken();
  const [code, setCode] = useState(linked);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await unwrap(api.POST('/v1/auth/email-change/confirm', { body: { token: code.trim() } }));
      setDone(true);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Page title="Confirm your new email">
      <Section title="New email address">
        {done ? (
          <Notice tone="success" title="Your email address was changed.">
            <p>
              <Link to="/me">Open your account</Link>
            </p>
          </Notice>
        ) : (
          <form className="form" onSubmit={(e) => void submit(e)} aria-label="Confirm the new email">
            <Field label="Confirmation code" name="email-code" autoComplete="one-time-code" required value={code} onChange={(e) => setCode(e.target.value)} />
            <ApiErrorNotice error={error} title="Confirmation refused" />
            <Button type="submit" variant="primary" busy={busy}>
              Confirm new email
            </Button>
          </form>
        )}
      </Section>
    </Page>
  );
}
