/**
 * The npm package a module URL or path belongs to: the name after its last `node_modules/`
 * (`@scope/name` for a scoped package), and the file's path from that name on; null outside
 * node_modules. Used by test/support/startup-packages.ts and bench/gateway-profile.ts.
 * @example packageOf('file:///app/node_modules/pg/lib/utils.js') // { name: 'pg', path: 'pg/lib/utils.js' }
 */
export function packageOf(url: string): { name: string; path: string } | null {
  const at = url.lastIndexOf('/node_modules/');
  if (at === -1) return null;
  const path = url.slice(at + '/node_modules/'.length);
  const [first = '', second = ''] = path.split('/');
  return { name: first.startsWith('@') ? `${first}/${second}` : first, path };
}
