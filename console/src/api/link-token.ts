/**
 * The token a mailed link carries (`?token=`: an invitation, an email verification, a password
 * reset, an email change). It is read once when the page opens, and then wiped from the address
 * bar with history.replaceState, so it stays neither in the browser's history nor in a URL copied
 * from the address bar. It never leaves the node's origin: the console's CSP allows no other
 * origin and its pages send no Referer (Referrer-Policy: no-referrer).
 *
 * Using the token is always the user's own click (the page only fills the form): a mail scanner
 * that opens the link spends nothing.
 */
import { useEffect, useState } from 'react';

function tokenInAddress(): string {
  return new URLSearchParams(window.location.search).get('token') ?? '';
}

/** Removes ?token= from the current history entry (the rest of the address is kept). */
export function wipeLinkToken(): void {
  const url = new URL(window.location.href);
  if (!url.searchParams.has('token')) return;
  url.searchParams.delete('token');
  window.history.replaceState(window.history.state, '', url.pathname + url.search + url.hash);
}

/** The link's token ('' without one), read on the first render and wiped from the address after. */
export function useLinkToken(): string {
  const [token] = useState(tokenInAddress);
  useEffect(wipeLinkToken, []);
  return token;
}
