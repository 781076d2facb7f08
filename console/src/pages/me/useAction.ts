/** A small state machine for one form or button of the Me page: busy, its refusal, its success message. */
import { useState } from 'react';

export function useAction() {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const [done, setDone] = useState<string | null>(null);
  const run = async (work: () => Promise<string | null | void>) => {
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      setDone((await work()) ?? null);
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { busy, error, done, run };
}
