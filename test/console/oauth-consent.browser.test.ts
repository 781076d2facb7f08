/**
 * The MCP authorization server's consent page in Chromium, driven by the stock MCP SDK as the
 * client: the SDK's authorization URL opened in a browser that is signed out, the member signs in
 * and lands on the consent page, sees the client's name, where it will be sent back and which
 * workspace; Approve sends the browser to the client's loopback redirect URI with a code, the SDK
 * exchanges it and lists tools. Deny sends access_denied; a viewer is shown the API's FORBIDDEN.
 * No CSP or Trusted Types violation, no serious or critical axe-core finding.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { UnauthorizedError } from '@modelcontextprotocol/sdk/client/auth.js';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chromiumSkipReason } from '../support/browser.ts';
import { echoTool, startMcpUpstream, type McpUpstream } from '../support/mcp-upstream.ts';
import { signUpUser, TEST_PASSWORD, type SignedInUser } from '../support/users.ts';
import { addMember, TestOAuthClient } from '../mcp-auth/support.ts';
import { expectAccessible, expectNoCspViolations, shoot, startConsoleRig, type ConsoleRig } from './harness.ts';

const skipReason = chromiumSkipReason;

(skipReason ? describe.skip : describe)(`MCP OAuth consent page in Chromium${skipReason ? `: skipped, ${skipReason}` : ''}`, () => {
  let rig: ConsoleRig;
  let up: McpUpstream;
  let owner: SignedInUser;
  let viewer: SignedInUser;
  let ws = '';
  let callback: Server;
  let redirectUrl = '';
  const arrived: URL[] = [];

  const as = async (user: SignedInUser, method: 'POST' | 'PUT', url: string, payload: object) => {
    const res = await rig.t.app.inject({ method, url, headers: user.auth, payload });
    expect(res.statusCode, res.body).toBeLessThan(300);
    return res.body ? (res.json() as Record<string, unknown>) : {};
  };

  /** A signed-out browser opens the authorization URL and signs in on the way: the consent page. */
  async function openSignedIn(url: URL, email: string): Promise<Page> {
    const page = await (await rig.newContext()).newPage();
    await page.goto(url.toString());
    await page.getByLabel('Email', { exact: true }).fill(email);
    await page.getByLabel('Password', { exact: true }).fill(TEST_PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Authorize an MCP client' }).waitFor();
    return page;
  }

  async function startAuthorization(name: string): Promise<{ provider: TestOAuthClient; transport: StreamableHTTPClientTransport }> {
    const provider = new TestOAuthClient(redirectUrl, name);
    const transport = new StreamableHTTPClientTransport(new URL(`${rig.origin}/v1/mcp/${ws}`), { authProvider: provider });
    await expect(new Client({ name, version: '1' }).connect(transport)).rejects.toBeInstanceOf(UnauthorizedError);
    return { provider, transport };
  }

  beforeAll(async () => {
    up = await startMcpUpstream([echoTool]);
    rig = await startConsoleRig({ overrides: { 'mcp.upstream.allowedHosts': ['127.0.0.1:*'], 'mcp.upstream.allowedCidrs': ['127.0.0.1/32'], 'mcp.upstream.allowInsecureHttp': true } });
    callback = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname === '/callback') arrived.push(url);
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end('<!doctype html><title>Done</title><h1>You can close this window.</h1>');
    });
    await new Promise<void>((resolve) => callback.listen(0, '127.0.0.1', resolve));
    redirectUrl = `http://127.0.0.1:${(callback.address() as AddressInfo).port}/callback`;
    owner = await signUpUser(rig.t.app, rig.t.mail, 'consent-owner@example.com');
    viewer = await signUpUser(rig.t.app, rig.t.mail, 'consent-viewer@example.com');
    const org = String((await as(owner, 'POST', '/v1/orgs', { name: 'Acme' })).id);
    ws = String((await as(owner, 'POST', `/v1/orgs/${org}/workspaces`, { name: 'Research' })).id);
    await addMember(rig.t.app, rig.t.mail, owner, org, viewer, 'viewer');
    await as(owner, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/docs`, { url: up.url });
    await as(owner, 'POST', `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/docs/sync`, {});
    await as(owner, 'PUT', `/v1/orgs/${org}/workspaces/${ws}/mcp/servers/docs/tools/echo`, { status: 'approved' });
  }, 120_000);

  afterAll(async () => {
    await rig?.close();
    await up?.close();
    await new Promise((resolve) => callback?.close(resolve));
  });

  it('a member signs in on the way, approves, and the stock SDK client lists tools with the code it got', async () => {
    const { provider, transport } = await startAuthorization('Research Desk');
    const page = await openSignedIn(provider.authorizationUrl as URL, owner.email);
    await page.getByRole('heading', { name: 'Connect Research Desk' }).waitFor();
    await expect(page.locator('dd code').first().textContent()).resolves.toBe(new URL(redirectUrl).host);
    await expect(page.getByText('Research', { exact: true }).isVisible()).resolves.toBe(true);
    await expectAccessible(page);
    await shoot(page, 'oauth-consent');
    await page.getByRole('button', { name: 'Approve' }).click();
    await page.getByRole('heading', { name: 'You can close this window.' }).waitFor();
    const back = arrived.at(-1) as URL;
    expect(back.searchParams.get('iss')).toBe(rig.origin);
    const code = back.searchParams.get('code');
    expect(code).toBeTruthy();
    await transport.finishAuth(code as string);
    const client = new Client({ name: 'desk', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${rig.origin}/v1/mcp/${ws}`), { authProvider: provider }));
    expect((await client.listTools()).tools.map((x) => x.name)).toEqual(['docs__echo']);
    await client.close();
    expectNoCspViolations(rig);
  });

  it('Deny sends the client access_denied and no code', async () => {
    const { provider } = await startAuthorization('Unwanted');
    const page = await openSignedIn(provider.authorizationUrl as URL, owner.email);
    await page.getByRole('heading', { name: 'Connect Unwanted' }).waitFor();
    await page.getByRole('button', { name: 'Deny' }).click();
    await page.getByRole('heading', { name: 'You can close this window.' }).waitFor();
    const back = arrived.at(-1) as URL;
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('code')).toBeNull();
    expectNoCspViolations(rig);
  });

  it('attack: a viewer cannot approve: the page shows the API\'s FORBIDDEN and no Approve button', async () => {
    const { provider } = await startAuthorization('Viewer app');
    const page = await openSignedIn(provider.authorizationUrl as URL, viewer.email);
    await page.getByText('FORBIDDEN').waitFor();
    expect(await page.getByRole('button', { name: 'Approve' }).count()).toBe(0);
    await expectAccessible(page);
    expectNoCspViolations(rig);
  });
});
