/**
 * The console's built files (console/dist, made by `npm run build:console`, which `npm ci` runs
 * through the `prepare` script), read into memory once: the bundle is a few hundred kilobytes.
 * Text files are also gzip-compressed (once, on first use) for browsers that accept it.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const CONSOLE_DIST = fileURLToPath(new URL('../../console/dist/', import.meta.url));

export interface Asset {
  body: Buffer;
  /** The gzip-compressed body (text files over 512 bytes), made on first use: nodes that never serve the console never pay for it. */
  gzip: () => Buffer | undefined;
  type: string;
  /** Vite names files under assets/ by their content hash: they never change. */
  immutable: boolean;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
};

function typeOf(name: string): string {
  const dot = name.lastIndexOf('.');
  return TYPES[dot >= 0 ? name.slice(dot) : ''] ?? 'application/octet-stream';
}

function walk(dir: string): string[] {
  return readdirSync(dir).flatMap((name): string[] => {
    const full = join(dir, name);
    return statSync(full).isDirectory() ? walk(full) : [full];
  });
}

/** Every file of the build by its URL path under /console/ (e.g. "assets/index-abc.js"), or undefined when not built. */
export function loadConsoleAssets(dir: string = CONSOLE_DIST): Map<string, Asset> | undefined {
  if (!existsSync(join(dir, 'index.html'))) return undefined;
  const assets = new Map<string, Asset>();
  for (const file of walk(dir)) {
    const path = relative(dir, file).split(sep).join('/');
    // The build's manifest (.vite/) is for tests and tools, not browsers.
    if (path.startsWith('.')) continue;
    const body = readFileSync(file);
    const type = typeOf(path);
    const text = type.startsWith('text/') || type.startsWith('image/svg') || type.startsWith('application/json');
    let gzipped: Buffer | undefined;
    const gzip = text && body.length > 512 ? () => (gzipped ??= gzipSync(body, { level: 9 })) : () => undefined;
    assets.set(path, { body, gzip, type, immutable: path.startsWith('assets/') });
  }
  return assets;
}
