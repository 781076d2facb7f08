/**
 * The API reference UI at /docs (EDGE-2) and the site icon. The UI is a plugin with routes of
 * its own; they are public, read-category, and recorded in the route table like any other.
 *
 * Its page runs under a CSP of its own with a nonce made for each response: scripts and style
 * elements only with that nonce (or from this server), no 'unsafe-eval'. The UI's bundle creates
 * <style> elements at run time and its schema library probes for eval; a small script served from
 * this server (`/docs/js/csp.js`, loaded before the bundle) turns the probe off and gives the
 * bundle's style elements the page's nonce, which the bundle itself publishes in a meta tag.
 *
 * Style attributes stay refused (no 'unsafe-inline' anywhere): the shim moves the style
 * attributes of markup the bundle writes (innerHTML, outerHTML, insertAdjacentHTML, setAttribute,
 * contextual fragments, imported nodes) onto the CSSOM (element.style), which a CSP does not
 * govern, so the UI keeps its styles (the highlighter's line-number variables among them) and the
 * browser reports no violation. `'report-sample'` puts the first characters of anything still
 * refused into the browser's report, so a test can say what it was.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { AppError } from '../errors.ts';

/** What the route table needs of a UI route (app.ts records it). */
export type RecordUiRoute = (method: string, url: string) => void;

const FAVICON = readFileSync(new URL('./favicon.ico', import.meta.url));

/** Runs before the UI's bundle: see the module comment. Plain ES2020, no inline script needed. */
const CSP_SHIM = `// Gatehouse: lets the reference UI run under a nonce CSP, without inline scripts or 'unsafe-eval'.
(() => {
  // The UI's schema library probes for eval (new Function) unless told it may not compile.
  globalThis.__zod_globalConfig = Object.assign(globalThis.__zod_globalConfig || {}, { jitless: true });
  const nonce = document.querySelector('meta[property="csp-nonce"]')?.content;
  if (!nonce) return;
  // Style elements the bundle creates get the page's nonce; parsed markup never passes here.
  const createElement = Document.prototype.createElement;
  Document.prototype.createElement = function (tag, options) {
    const element = createElement.call(this, tag, options);
    if (String(tag).toLowerCase() === 'style') element.nonce = nonce;
    return element;
  };
  // Style attributes in markup are refused by the CSP; the same declarations set through the
  // CSSOM (element.style) are not. Markup the bundle writes keeps its styles under another name,
  // applied through the CSSOM once the elements exist.
  const HELD = 'data-gh-style';
  const restyle = (root) => {
    if (root.getAttribute && root.hasAttribute(HELD)) { root.style.cssText = root.getAttribute(HELD); root.removeAttribute(HELD); }
    if (root.querySelectorAll) for (const el of root.querySelectorAll('[' + HELD + ']')) { el.style.cssText = el.getAttribute(HELD); el.removeAttribute(HELD); }
  };
  const hold = (html) => String(html).replace(/(<[^>]*?\\s)style=/gi, '$1' + HELD + '=');
  for (const [proto, prop] of [[Element.prototype, 'innerHTML'], [Element.prototype, 'outerHTML'], [ShadowRoot.prototype, 'innerHTML']]) {
    const desc = Object.getOwnPropertyDescriptor(proto, prop);
    if (!desc || !desc.set) continue;
    Object.defineProperty(proto, prop, { ...desc, set(html) { const parent = prop === 'outerHTML' ? this.parentNode : this; desc.set.call(this, hold(html)); if (parent) restyle(parent); } });
  }
  const insertAdjacentHTML = Element.prototype.insertAdjacentHTML;
  Element.prototype.insertAdjacentHTML = function (where, html) { insertAdjacentHTML.call(this, where, hold(html)); restyle(this.parentNode || this); };
  const contextual = Range.prototype.createContextualFragment;
  Range.prototype.createContextualFragment = function (html) { const fragment = contextual.call(this, hold(html)); restyle(fragment); return fragment; };
  const parse = DOMParser.prototype.parseFromString;
  DOMParser.prototype.parseFromString = function (text, type) { return parse.call(this, type === 'text/html' ? hold(text) : text, type); };
  const importNode = Document.prototype.importNode;
  Document.prototype.importNode = function (node, deep) { const copy = importNode.call(this, node, deep); restyle(copy); return copy; };
  const setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    if (String(name).toLowerCase() === 'style') { this.style.cssText = String(value); return; }
    return setAttribute.call(this, name, value);
  };
})();
`;

/** The docs page's CSP for one response. */
export function docsCsp(nonce: string): string {
  return `default-src 'none'; script-src 'self' 'nonce-${nonce}'; style-src 'self' 'nonce-${nonce}' 'report-sample'; style-src-elem 'self' 'nonce-${nonce}'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'`;
}

/** A nonce of 128 random bits, hex. */
function freshNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * Registers /docs, /docs/, /docs/js/scalar.js, /docs/js/csp.js and /favicon.ico on `app`.
 * The UI's plugin holds its browser bundle (about 8 MB, twice: about 21 MB of a node's resident
 * memory) from the moment it is imported, so it is loaded on the first request for the UI into a
 * Fastify app of its own that these routes hand the request to.
 */
export async function registerDocsUi(app: FastifyInstance, record: RecordUiRoute): Promise<void> {
  await app.register(async (docs) => {
    docs.addHook('onRoute', (route) => {
      const method = String(Array.isArray(route.method) ? route.method[0] : route.method);
      route.config = { ...route.config, gatehouse: { method, url: route.url, guard: { kind: 'public' }, permission: null, rateCategory: 'read', summary: 'API reference UI', hasBody: false, feature: 'docs' } };
      if (method !== 'HEAD') record(method, route.url);
    });
    // The inner app renders the page with this placeholder as its nonce; each response replaces
    // it with a nonce of its own. It is random so that it cannot occur anywhere else in the page.
    const placeholder = randomUUID().replace(/-/g, '');
    let ui: Promise<FastifyInstance> | undefined;
    const loadUi = async (): Promise<FastifyInstance> => {
      const { default: scalar } = await import('@scalar/fastify-api-reference');
      const inner = Fastify({ logger: false });
      await inner.register(scalar, {
        routePrefix: '/docs',
        // No hosted features: the page talks to this server only (its CSP allows nothing else);
        // the vendor's "Developer Tools / Configure / Share / Deploy" bar is never shown.
        configuration: {
          url: '/openapi.json',
          title: 'Gatehouse API',
          hideClientButton: true,
          showDeveloperTools: 'never',
          withDefaultFonts: false,
          telemetry: false,
          agent: { disabled: true },
          mcp: { disabled: true },
          nonce: placeholder,
        } as never,
      });
      await inner.ready();
      return inner;
    };
    const serveUi = async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      ui ??= loadUi().catch((err: unknown) => {
        ui = undefined;
        throw err;
      });
      const res = await (await ui).inject({ method: 'GET', url: request.url });
      if (res.statusCode === 404) throw new AppError('NOT_FOUND');
      const nonce = freshNonce();
      reply.code(res.statusCode).header('content-security-policy', docsCsp(nonce));
      for (const name of ['content-type', 'location'] as const) {
        const value = res.headers[name];
        if (typeof value === 'string') reply.header(name, value);
      }
      if (!String(res.headers['content-type']).startsWith('text/html')) return reply.send(res.rawPayload);
      const page = res.payload.replaceAll(placeholder, nonce).replace('</head>', `  <script src="/docs/js/csp.js" nonce="${nonce}"></script>\n  </head>`);
      return reply.send(page);
    };
    for (const url of ['/docs', '/docs/', '/docs/js/scalar.js']) docs.get(url, { schema: { hide: true } }, serveUi);
    docs.get('/docs/js/csp.js', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('application/javascript; charset=utf-8').header('content-security-policy', docsCsp(freshNonce())).send(CSP_SHIM),
    );
    docs.get('/favicon.ico', { schema: { hide: true } }, async (_request, reply) =>
      reply.type('image/x-icon').header('cache-control', 'public, max-age=86400').send(FAVICON),
    );
    docs.addHook('onClose', async () => {
      const loaded = await ui?.catch(() => undefined);
      await loaded?.close();
    });
  });
}
