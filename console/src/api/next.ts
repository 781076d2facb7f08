/**
 * Where to go after a sign-in. A console path stays in the console (client-side); anything else
 * (an app's return URL the API handed back) goes through GET /v1/auth/return, where the node checks
 * it against its allowlist: the console never judges, or follows, a foreign URL by itself.
 */
export function nextTarget(next: string | null | undefined): { internal: string } | { external: string } {
  if (!next) return { internal: '/me' };
  if (next === '/console' || next.startsWith('/console/')) return { internal: next.slice('/console'.length) || '/' };
  if (/^\/(?![/\\])/.test(next)) return { internal: next };
  return { external: `/v1/auth/return?to=${encodeURIComponent(next)}` };
}
