/**
 * The console's Content-Security-Policy (UI-1). Every directive, and why:
 * - default-src 'none': anything not named below is refused (objects, frames, workers, manifests,
 *   media, prefetch).
 * - script-src 'self': the bundle's files from this node only; no inline script, no eval (neither
 *   'unsafe-inline' nor 'unsafe-eval' appears anywhere).
 * - style-src 'self': the bundle's CSS files only; no <style> elements, no style attributes (the
 *   console's components carry classes only).
 * - img-src 'self' data:: the TOTP enrolment QR code is drawn client-side into a data: URL
 *   (an image, never a script or a style).
 * - connect-src 'self': the console calls this node's public API only.
 * - font-src 'self': no fonts are shipped (system fonts); kept so a future self-hosted font needs
 *   no policy change, and nothing external can ever be loaded.
 * - base-uri 'none': no <base> can redirect the relative URLs.
 * - form-action 'self': forms post nowhere but here (the console's forms are handled by script;
 *   'self' keeps a browser's native submit of a form, should script fail, on this node).
 * - frame-ancestors 'none': no site may frame the console (clickjacking), as X-Frame-Options DENY.
 * - require-trusted-types-for 'script' + trusted-types 'none': the DOM's injection sinks
 *   (innerHTML, script src, eval-like calls) refuse strings, and no Trusted Types policy may be
 *   created: the console renders through React's DOM properties, never through an HTML sink.
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "font-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
  "require-trusted-types-for 'script'",
  "trusted-types 'none'",
].join('; ');
