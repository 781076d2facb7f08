/**
 * The tenant isolation suite (TEN-2, TEN-3), on PGlite and on PostgreSQL (CI).
 *
 * Nothing here lists tables or routes by hand: tables come from the catalog (every public table
 * with a tenant_id column), routes from the features the node serves (every path with `:org`),
 * bodies from each route's own schema. A new table or route is covered as soon as it exists;
 * a new table the fixture does not fill fails the suite, naming the table.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_POLICY } from '../../src/guard/index.ts';
import { rotateDeks } from '../../src/keyring/reencrypt.ts';
import { MCP } from '../../src/mcp/index.ts';
import type { RouteDef } from '../../src/server/route.ts';
import { findRlsGaps } from '../../src/store/migrate.ts';
import type { Queryable } from '../../src/store/db-types.ts';
import { PLATFORM_PERMISSIONS } from '../../src/tenancy/authority.ts';
import { PERMISSIONS, ROLES, can, isPermission, type Role } from '../../src/tenancy/permissions.ts';
import { WEBHOOKS } from '../../src/webhooks/index.ts';
import { createTestApp, type TestApp } from '../support/app.ts';
import { createScratchPostgresDatabase } from '../support/pg-scratch.ts';
import { postgresTarget, requireUrl } from '../support/services.ts';
import { signUpUser, type SignedInUser } from '../support/users.ts';

interface Fixture {
  org: string;
  ws: string;
  invitation: string;
  /** A plain member, the target of member routes. */
  target: string;
  /** An API key id in the workspace. */
  key: string;
  /** A provider credential name in the workspace. */
  provider: string;
  /** An SSO connection and a claimed domain of the org. */
  connection: string;
  domain: string;
  /** A guard subject with strikes and a block in the workspace (`key:<id>`). */
  subject: string;
  /** An MCP server of the workspace and one of its tools. */
  server: string;
  tool: string;
  /** A webhook endpoint's name, one of its secrets, and a stored event. */
  endpoint: string;
  secret: string;
  event: string;
  /** A budget of the org (with a reservation in its ledger). */
  budget: string;
  /** The id (jti) of a client token revoked in the workspace. */
  tokenId: string;
}

const pg = postgresTarget();
const targets = [
  { name: 'PGlite', skip: undefined as string | undefined, database: async () => ({ env: {}, drop: async () => undefined }) },
  {
    name: 'PostgreSQL',
    skip: pg.skipReason,
    database: async () => {
      const scratch = await createScratchPostgresDatabase(requireUrl(pg));
      return { env: { DATABASE_URL: scratch.url }, drop: scratch.drop };
    },
  },
];

const ident = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected table name ${name}`);
  return `"${name}"`;
};

async function tenantTables(tx: Queryable): Promise<string[]> {
  const { rows } = await tx.query<{ relname: string }>(
    `select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p')
        and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and a.attnum > 0 and not a.attisdropped)
      order by c.relname`,
  );
  return rows.map((r) => r.relname);
}

/** Every tenant row of one org, as JSON text per table: the "changed nothing" witness. */
async function snapshot(t: TestApp, orgId: string): Promise<Record<string, string>> {
  return t.node.db.asOwner(async (tx) => {
    const out: Record<string, string> = {};
    for (const table of await tenantTables(tx)) {
      const { rows } = await tx.query<{ j: string }>(`select coalesce(json_agg(x order by x::text)::text, '[]') as j from ${ident(table)} x where tenant_id = $1`, [orgId]);
      out[table] = rows[0]?.j ?? '[]';
    }
    return out;
  });
}

/** A value the schema accepts, built from its JSON Schema: so a handler would really act if authorization let it. */
function sampleOf(schema: unknown, ids: Record<string, string>, key = ''): unknown {
  const s = schema as { type?: string | string[]; enum?: unknown[]; format?: string; properties?: Record<string, unknown>; required?: string[]; anyOf?: unknown[]; minLength?: number; const?: unknown };
  if (s.const !== undefined) return s.const;
  if (s.anyOf?.[0]) return sampleOf(s.anyOf[0], ids, key);
  if (s.enum) return s.enum.includes('viewer') ? 'viewer' : s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'object':
      return Object.fromEntries((s.required ?? []).map((k) => [k, sampleOf(s.properties?.[k], ids, k)]));
    case 'string':
      if (s.format === 'uuid') return ids[key] ?? ids.user;
      if (s.format === 'email' || key === 'email') return `sample-${randomBytes(4).toString('hex')}@example.com`;
      return 'sample'.padEnd(Math.max(6, s.minLength ?? 0), 'x');
    case 'integer':
    case 'number':
      return 1;
    case 'boolean':
      return true;
    case 'array':
      return [];
    default:
      return null;
  }
}

/** The error code of a JSON error body; undefined for empty, streamed or non-error bodies. */
function errorCodeOf(res: LightMyRequestResponse): string | undefined {
  if (!res.headers['content-type']?.toString().startsWith('application/json')) return undefined;
  return res.json<{ error?: { code: string } } | null>()?.error?.code;
}

function bodyFor(route: RouteDef, ids: Record<string, string>): object | undefined {
  if (!route.schema.body) return undefined;
  return sampleOf(z.toJSONSchema(route.schema.body, { io: 'input', unrepresentable: 'any' }), ids) as object;
}

function urlFor(route: RouteDef, ids: Record<string, string>): string {
  return route.url.replace(/:([a-zA-Z]+)/g, (_m, name: string) => {
    const id = ids[name];
    if (!id) throw new Error(`the isolation fixture has no id for :${name} in ${route.url}; add one`);
    return id;
  });
}

for (const target of targets) {
  (target.skip ? describe.skip : describe)(`tenant isolation on ${target.name}${target.skip ? `: ${target.skip}` : ''}`, () => {
    let t: TestApp;
    let drop: () => Promise<void> = async () => undefined;
    const members = {} as Record<Role, SignedInUser>;
    let bOwner: SignedInUser;
    let spare: SignedInUser;
    let a: Fixture;
    let b: Fixture;
    let tenantRoutes: RouteDef[];

    const call = (user: SignedInUser, route: RouteDef, ids: Record<string, string>): Promise<LightMyRequestResponse> => {
      const payload = bodyFor(route, ids);
      return t.app.inject({ method: route.method, url: urlFor(route, ids), headers: user.auth, ...(payload ? { payload } : {}) });
    };

    /**
     * An org owned by `owner`, the other role members added, a workspace, a narrowing, a pending
     * invitation, a data key, and the gateway's rows: an API key, a provider credential, model
     * settings and a usage record.
     */
    async function makeOrg(owner: SignedInUser, others: Partial<Record<Role, SignedInUser>>, name: string): Promise<Fixture> {
      const { tenancy, db, keyring, gateway } = t.node;
      const org = (await tenancy.orgs.create(owner.userId, name)).id;
      await db.withTenant(org, async (tx) => {
        for (const [role, user] of Object.entries(others)) {
          await tx.query('insert into memberships (tenant_id, user_id, role) values ($1, $2, $3)', [org, user.userId, role]);
        }
        await tx.query("insert into memberships (tenant_id, user_id, role) values ($1, $2, 'viewer')", [org, spare.userId]);
      });
      await tenancy.authority.evictOrg(org);
      const ws = (await tenancy.workspaces.create(org, `${name} ws`)).id;
      await tenancy.workspaces.setMemberRole(org, ws, 'owner', spare.userId, 'viewer');
      const invitation = (await tenancy.invitations.create(org, owner.userId, 'owner', `invitee-${randomBytes(4).toString('hex')}@example.com`, 'viewer')).id;
      await keyring.seal({ tenantId: org }, { table: 'orgs', column: 'name', rowId: org }, name);
      const { apiKey } = await gateway.keys.create(org, ws, owner.userId, { name: 'fixture', scopes: ['ai:chat'], expiresAt: null, monthlyLimit: 10, rateLimitPerMinute: null });
      const provider = 'fixture-openai';
      await gateway.routing.setProvider(org, ws, owner.userId, provider, { kind: 'openai', baseUrl: 'https://api.openai.com', apiKey: `fixture-vendor-key-${randomBytes(8).toString('hex')}`, models: ['gpt-*'] });
      await gateway.routing.setSettings(org, ws, { allowedModels: ['gpt-*'], aliases: [{ name: 'fast', targets: [{ model: 'gpt-4o-mini', provider }] }] });
      gateway.meter.record({
        tenantId: org,
        workspaceId: ws,
        apiKeyId: apiKey.id,
        provider: `workspace:${provider}`,
        model: 'gpt-4o-mini',
        inputTokens: 10,
        outputTokens: 5,
        estimated: false,
        costMicroUsd: 42,
        status: 200,
        errorCode: null,
        durationMs: 12,
        at: new Date(),
      });
      await gateway.meter.flush();
      // Enterprise SSO: a SAML connection, a claimed domain, and the spare member linked to it.
      const connection = randomUUID();
      const domain = randomUUID();
      await db.withTenant(org, async (tx) => {
        await tx.query(
          `insert into sso_connections (id, tenant_id, kind, name, default_role, saml_idp_entity_id, saml_sso_url, saml_idp_certs, created_by)
           values ($1, $2, 'saml', 'fixture idp', 'viewer', 'https://idp.example/fixture', 'https://idp.example/sso', $3, $4)`,
          [connection, org, ['-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n'], owner.userId],
        );
        await tx.query('insert into sso_domains (id, tenant_id, connection_id, domain) values ($1, $2, $3, $4)', [domain, org, connection, `d${randomBytes(4).toString('hex')}.example`]);
        await tx.query('insert into sso_identities (id, tenant_id, connection_id, subject, user_id, email) values ($1, $2, $3, $4, $5, $6)', [
          randomUUID(),
          org,
          connection,
          `fixture-${randomBytes(4).toString('hex')}`,
          spare.userId,
          spare.email,
        ]);
        // A person an admin removed from the org (SSO does not provision them again).
        await tx.query('insert into member_removals (tenant_id, user_id, removed_by) values ($1, $2, $3)', [org, spare.userId, owner.userId]);
        // The input guard: a workspace policy, and a key with strikes and a temporary block.
        await tx.query('insert into guard_policies (tenant_id, workspace_id, policy, updated_by) values ($1, $2, $3, $4)', [org, ws, JSON.stringify({ ...DEFAULT_POLICY, mode: 'flag' }), owner.userId]);
        await tx.query("insert into guard_strikes (tenant_id, workspace_id, subject, strikes, window_started_at, level, blocked_until) values ($1, $2, $3, 2, now(), 1, now() + interval '1 hour')", [org, ws, `key:${apiKey.id}`]);
      });
      // MCP: a server (sealed headers), a tool of it, and a key's own tool allowlist.
      const server = 'fixture-mcp';
      const tool = 'fixture_tool';
      const mcp = t.node.use(MCP);
      await mcp.registry.setServer(org, ws, owner.userId, server, { url: 'https://mcp.fixture.example/mcp', headers: { authorization: `Bearer fixture-${randomBytes(8).toString('hex')}` } });
      const serverId = (await mcp.registry.target(org, ws, server)).id;
      await mcp.registry.recordTools(org, ws, serverId, server, [{ name: tool, inputSchema: { type: 'object' } }], new Date());
      await mcp.registry.recordPrompts(org, ws, serverId, server, [{ name: tool }], new Date());
      await mcp.registry.setKeyTools(org, ws, apiKey.id, [`${server}__${tool}`]);
      // Inbound webhooks: an endpoint with a secret, a stored event (its replay record and queue row) and a delivery attempt.
      const hooks = t.node.use(WEBHOOKS);
      const endpoint = 'fixture-hook';
      await hooks.endpoints.create(org, { name: endpoint, provider: 'github', destinationUrl: null, verifyToken: null });
      const secret = (await hooks.endpoints.addSecret(org, endpoint, { secret: `fixture-secret-${randomBytes(4).toString('hex')}`, expiresAt: null })).id;
      const forVerify = (await hooks.endpoints.loadForVerify(org, endpoint))?.endpoint;
      if (!forVerify) throw new Error('fixture endpoint missing');
      const event = (await hooks.events.store(forVerify, { eventId: randomUUID(), eventType: 'push' }, Buffer.from('{"fixture":true}'))).id;
      await db.withTenant(org, (tx) => tx.query("insert into webhook_attempts (id, tenant_id, event_id, attempt, at, status_code, error, duration_ms, node) values ($1, $2, $3, 1, now(), null, 'no_destination', 0, 'fixture')", [randomUUID(), org, event]));
      // Budgets: a definition and an open reservation past its lifetime (the kind the sweep reads
      // without tenant context; no tenant context may show another org's).
      const budget = randomUUID();
      await db.withTenant(org, async (tx) => {
        await tx.query("insert into budgets (id, tenant_id, category, period, hard_limit, updated_by) values ($1, $2, 'ai_tokens', 'day', 1000, $3)", [budget, org, owner.userId]);
        await tx.query(
          `insert into budget_ledger (id, tenant_id, workspace_id, api_key_id, reserved, state, day, month, created_at, expires_at)
           values ($1, $2, $3, $4, '{"ai_tokens": 10}', 'open', '2026-01-01', '2026-01', now() - interval '2 hours', now() - interval '1 hour')`,
          [randomBytes(12).toString('base64url'), org, ws, apiKey.id],
        );
      });
      // Client tokens: one revoked by its id in the workspace (kept until it has surely expired).
      const tokenId = randomBytes(16).toString('base64url');
      await db.withTenant(org, (tx) =>
        tx.query("insert into client_token_revocations (tenant_id, workspace_id, token_id, keep_until, revoked_by) values ($1, $2, $3, now() + interval '1 hour', 'fixture')", [org, ws, tokenId]),
      );
      return { org, ws, invitation, target: spare.userId, key: apiKey.id, provider, connection, domain, server, tool, subject: `key:${apiKey.id}`, endpoint, secret, event, budget, tokenId };
    }

    const idsOf = (f: Fixture): Record<string, string> => ({ org: f.org, ws: f.ws, invitation: f.invitation, user: f.target, userId: f.target, key: f.key, provider: f.provider, connection: f.connection, domain: f.domain, server: f.server, tool: f.tool, prompt: f.tool, subject: f.subject, endpoint: f.endpoint, secret: f.secret, event: f.event, budget: f.budget, tokenId: f.tokenId });

    beforeAll(async () => {
      const database = await target.database();
      drop = database.drop;
      t = await createTestApp({ env: database.env, overrides: { 'rateLimit.enabled': false, 'tenancy.maxOrgsPerUser': 10_000, 'budgets.sweepSeconds': 3600 }, logLevel: 'warn' });
      for (const role of ROLES) members[role] = await signUpUser(t.app, t.mail, `${role}-a@example.com`);
      bOwner = await signUpUser(t.app, t.mail, 'owner-b@example.com');
      spare = await signUpUser(t.app, t.mail, 'spare@example.com');
      a = await makeOrg(members.owner, { admin: members.admin, editor: members.editor, viewer: members.viewer }, 'Org A');
      b = await makeOrg(bOwner, {}, 'Org B');
      // A finished DEK rotation leaves a key_jobs row per tenant.
      for (const org of [a.org, b.org]) await rotateDeks({ db: t.node.db, keyring: t.node.keyring, columns: [], tenantId: org });
      // The provider-facing webhook routes are not member routes: the signature decides there (test/webhooks/).
      tenantRoutes = t.node.features.flatMap((f) => f.routes).filter((r) => r.url.includes(':org') && !r.url.startsWith('/v1/hooks/'));
    });

    afterAll(async () => {
      await t?.close();
      await drop();
    });

    it('finds forced RLS on every tenant table, and an application role that owns nothing and cannot bypass RLS', async () => {
      expect(await t.node.db.asOwner((tx) => findRlsGaps(tx))).toEqual([]);
      const role = await t.node.db.asOwner((tx) =>
        tx.query<{ rolbypassrls: boolean; rolsuper: boolean; owned: number }>(
          `select r.rolbypassrls, r.rolsuper, (select count(*)::int from pg_class c where c.relowner = r.oid) as owned from pg_roles r where r.rolname = 'gatehouse_app'`,
        ),
      );
      expect(role.rows).toEqual([{ rolbypassrls: false, rolsuper: false, owned: 0 }]);
    });

    it('has fixture rows for both orgs in every tenant table (a new table must be filled here to be tested)', async () => {
      const tables = await t.node.db.asOwner((tx) => tenantTables(tx));
      expect(tables).toEqual(
        expect.arrayContaining(['orgs', 'memberships', 'workspaces', 'workspace_members', 'invitations', 'data_keys', 'key_jobs', 'api_keys', 'provider_credentials', 'workspace_model_settings', 'usage_records', 'sso_connections', 'sso_domains', 'sso_identities', 'member_removals', 'mcp_servers', 'mcp_tools', 'mcp_key_tools', 'guard_policies', 'guard_strikes', 'webhook_endpoints', 'webhook_secrets', 'webhook_events', 'webhook_replays', 'webhook_deliveries', 'webhook_attempts', 'budgets', 'budget_ledger', 'client_token_revocations']),
      );
      const sa = await snapshot(t, a.org);
      const sb = await snapshot(t, b.org);
      const empty = tables.filter((table) => sa[table] === '[]' || sb[table] === '[]');
      expect(empty, 'tenant tables without fixture rows').toEqual([]);
    });

    it("as tenant A, reads, updates, deletes and inserts aimed at tenant B's rows affect nothing", async () => {
      const { db } = t.node;
      const tables = await db.asOwner((tx) => tenantTables(tx));
      const before = await snapshot(t, b.org);
      const bRows = await db.asOwner(async (tx) => {
        const out: Record<string, unknown> = {};
        for (const table of tables) out[table] = (await tx.query<{ j: unknown }>(`select row_to_json(x) as j from ${ident(table)} x where tenant_id = $1 limit 1`, [b.org])).rows[0]?.j;
        return out;
      });
      for (const table of tables) {
        const name = ident(table);
        const seen = await db.withTenant(a.org, (tx) => tx.query<{ n: number; other: number }>(`select count(*)::int as n, count(*) filter (where tenant_id <> $1)::int as other from ${name}`, [a.org]));
        expect({ table, other: seen.rows[0]?.other }).toEqual({ table, other: 0 });
        expect({ table, n: seen.rows[0]?.n }).not.toEqual({ table, n: 0 });
        const read = await db.withTenant(a.org, (tx) => tx.query(`select * from ${name} where tenant_id = $1`, [b.org]));
        expect({ table, read: read.rowCount }).toEqual({ table, read: 0 });
        // Tables the application may never update or delete from (the audit log) refuse outright; that affects nothing too.
        const updated = await db
          .withTenant(a.org, (tx) => tx.query(`update ${name} set tenant_id = tenant_id where tenant_id = $1`, [b.org]))
          .catch((err: Error) => ({ rowCount: /permission denied/.test(err.message) ? 0 : err.message }));
        expect({ table, updated: updated.rowCount }).toEqual({ table, updated: 0 });
        const deleted = await db
          .withTenant(a.org, (tx) => tx.query(`delete from ${name} where tenant_id = $1`, [b.org]))
          .catch((err: Error) => ({ rowCount: /permission denied/.test(err.message) ? 0 : err.message }));
        expect({ table, deleted: deleted.rowCount }).toEqual({ table, deleted: 0 });
        // A copy of B's row inserted from A's context: refused by the policy's WITH CHECK.
        const insert = db.withTenant(a.org, (tx) => tx.query(`insert into ${name} select * from json_populate_record(null::${name}, $1::json)`, [JSON.stringify(bRows[table])]));
        await expect(insert, table).rejects.toThrow(/row-level security/);
        // And A's own rows cannot be moved into B.
        const move = db.withTenant(a.org, (tx) => tx.query(`update ${name} set tenant_id = $1`, [b.org]));
        await expect(move, table).rejects.toThrow(/row-level security|permission denied/);
      }
      expect(await snapshot(t, b.org)).toEqual(before);
    });

    it("answers every tenant route called by a member of org A, in each role, with org B's ids: 404, and changes nothing", async () => {
      expect(tenantRoutes.length).toBeGreaterThan(15);
      const before = await snapshot(t, b.org);
      const mixed = { ...idsOf(b), org: a.org };
      for (const route of tenantRoutes) {
        for (const role of ROLES) {
          const res = await call(members[role], route, idsOf(b));
          expect({ route: `${route.method} ${route.url}`, role, status: res.statusCode, code: res.json().error?.code }).toEqual({
            route: `${route.method} ${route.url}`,
            role,
            status: 404,
            code: 'NOT_FOUND',
          });
          if (route.url.includes(':ws')) {
            // A's org with B's workspace: the workspace is not in A.
            const res2 = await call(members[role], route, mixed);
            expect({ route: `${route.method} ${route.url} (A org, B workspace)`, role, status: res2.statusCode }).toEqual({
              route: `${route.method} ${route.url} (A org, B workspace)`,
              role,
              status: 404,
            });
          }
        }
      }
      expect(await snapshot(t, b.org)).toEqual(before);
    });

    it("answers every API-key route with a :workspace parameter, called with a key of org A holding the route's scope and org B's workspace: 404, and changes nothing", async () => {
      const keyRoutes = t.node.features.flatMap((f) => f.routes).filter((r) => r.guard.kind === 'apiKey' && r.url.includes(':workspace'));
      expect(keyRoutes.length).toBeGreaterThan(0);
      const before = await snapshot(t, b.org);
      for (const route of keyRoutes) {
        const scope = route.guard.kind === 'apiKey' ? route.guard.scope : '';
        const { key } = await t.node.gateway.keys.create(a.org, a.ws, members.owner.userId, { name: 'cross', scopes: [scope as 'mcp:tools'], expiresAt: null, monthlyLimit: null, rateLimitPerMinute: null });
        const payload = bodyFor(route, {});
        const res = await t.app.inject({ method: route.method, url: route.url.replace(':workspace', b.ws), headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) });
        expect({ route: `${route.method} ${route.url}`, status: res.statusCode }).toEqual({ route: `${route.method} ${route.url}`, status: 404 });
        // The same key on its own workspace gets past the workspace check (the control is the workspace, not the key).
        const own = await t.app.inject({ method: route.method, url: route.url.replace(':workspace', a.ws), headers: { authorization: `Bearer ${key}` }, ...(payload ? { payload } : {}) });
        expect({ route: `${route.method} ${route.url}`, own: own.statusCode }).not.toEqual({ route: `${route.method} ${route.url}`, own: 404 });
      }
      expect(await snapshot(t, b.org)).toEqual(before);
    });

    it('allows or refuses every role on every permission-bearing route exactly as the matrix says', async () => {
      const declared = t.node.features.flatMap((f) => f.routes).filter((r) => r.permission !== null);
      for (const route of declared) {
        const known = isPermission(route.permission) || (PLATFORM_PERMISSIONS as readonly string[]).includes(route.permission ?? '');
        expect({ route: route.url, permission: route.permission, known }).toEqual({ route: route.url, permission: route.permission, known: true });
      }
      const routes = declared.filter((r) => isPermission(r.permission));
      expect(routes.map((r) => r.permission)).toEqual(expect.arrayContaining(['org.read', 'org.delete', 'members.manage', 'invitations.manage', 'workspaces.update']));
      const outcomes: string[] = [];
      for (const route of routes) {
        const permission = route.permission;
        if (!isPermission(permission)) continue;
        for (const role of ROLES) {
          // A fresh org per call, so an allowed call (a delete, a leave) cannot change what the next one meets.
          const others = Object.fromEntries(ROLES.filter((r) => r !== 'owner').map((r) => [r, members[r]])) as Partial<Record<Role, SignedInUser>>;
          const f = await makeOrg(members.owner, others, `matrix ${route.method} ${route.url} ${role}`);
          const res = await call(members[role], route, idsOf(f));
          const code = errorCodeOf(res);
          const refused = res.statusCode === 403 && code === 'FORBIDDEN';
          const hidden = res.statusCode === 404 && code === 'NOT_FOUND';
          const expected = can(role, permission) ? 'allowed' : 'refused';
          const actual = refused ? 'refused' : hidden ? 'hidden' : 'allowed';
          outcomes.push(`${route.method} ${route.url} ${role}: ${actual === expected ? 'ok' : `expected ${expected}, got ${res.statusCode} ${code ?? ''}`}`);
        }
      }
      expect(outcomes.filter((o) => !o.endsWith(': ok'))).toEqual([]);
      // Every permission in the matrix is used by some route or is reserved for a feature still to come.
      const used = new Set(routes.map((r) => r.permission));
      expect(PERMISSIONS.filter((p) => used.has(p)).length).toBeGreaterThan(8);
    });
  });
}
