/**
 * Devices (AUTH-6): a long-lived random device cookie, stored as a hash per user, and the
 * networks (IPv4 /24, IPv6 /48) each device signed in from. A sign-in from a new device or a
 * new network is reported so the owner can be told.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Db } from '../store/db-types.ts';
import { hashToken } from './sessions.ts';

export const DEVICE_COOKIE = '__Host-gh_device';
const DEVICE_RE = /^[A-Za-z0-9_-]{43}$/;

/** The network of an address: IPv4 /24 or IPv6 /48. */
export function networkOf(ip: string): string {
  const v4 = ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
  if (isIPv4(v4)) return `${v4.split('.').slice(0, 3).join('.')}.0/24`;
  if (isIPv6(ip)) {
    // Expand :: so the first three groups are always present.
    const [head = '', tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [];
    const tl = tail ? tail.split(':') : [];
    const groups = ip.includes('::') ? [...h, ...Array(8 - h.length - tl.length).fill('0'), ...tl] : h;
    return `${groups.slice(0, 3).map((g) => (g || '0').toLowerCase()).join(':')}::/48`;
  }
  return 'unknown';
}

export function newDeviceCookie(): string {
  return randomBytes(32).toString('base64url');
}

export interface DeviceSighting {
  deviceId: string;
  cookie: string;
  /** First time this device signs in to this account. */
  newDevice: boolean;
  /** A known device from a network it has not used before. */
  newNetwork: boolean;
  /** The account had no device at all before (its first sign-in). */
  firstEver: boolean;
}

/** Records a sign-in's device and network for a user. */
export async function recordDevice(db: Db, userId: string, presented: string | undefined, ip: string, userAgent: string | undefined): Promise<DeviceSighting> {
  const cookie = presented && DEVICE_RE.test(presented) ? presented : newDeviceCookie();
  const hash = hashToken(cookie);
  const network = networkOf(ip);
  // One read, then one write: an insert that a concurrent first sign-in of the same device
  // cannot duplicate (unique user+device), or an update of the last-seen time and networks.
  const seen = await db.query<{ any_device: boolean; id: string | null; networks: string[] | null; recent: boolean | null }>(
    `select exists (select 1 from devices where user_id = $1) as any_device, d.id, d.networks,
            d.last_seen_at > now() - interval '1 hour' and d.user_agent is not distinct from $3 as recent
       from (select 1) one left join devices d on d.user_id = $1 and d.device_hash = $2 and d.revoked_at is null`,
    [userId, hash, userAgent?.slice(0, 512) ?? null],
  );
  const row = seen.rows[0];
  if (!row?.id) {
    const id = randomUUID();
    const inserted = await db.query<{ id: string }>(
      `insert into devices (id, user_id, device_hash, user_agent, networks) values ($1, $2, $3, $4, $5)
       on conflict (user_id, device_hash) do update set last_seen_at = now() returning id`,
      [id, userId, hash, userAgent?.slice(0, 512) ?? null, [network]],
    );
    return { deviceId: inserted.rows[0]?.id ?? id, cookie, newDevice: true, newNetwork: true, firstEver: row?.any_device !== true };
  }
  const networks = row.networks ?? [];
  const newNetwork = !networks.includes(network);
  // Nothing new and seen within the hour: last-seen to the hour is enough, skip the write.
  if (!newNetwork && row.recent === true) return { deviceId: row.id, cookie, newDevice: false, newNetwork: false, firstEver: false };
  await db.query('update devices set last_seen_at = now(), user_agent = $2, networks = $3 where id = $1', [
    row.id,
    userAgent?.slice(0, 512) ?? null,
    newNetwork ? [...networks, network].slice(-20) : networks,
  ]);
  return { deviceId: row.id, cookie, newDevice: false, newNetwork, firstEver: false };
}

/**
 * Whether this user verified a second factor at sign-in on the presented device recently enough
 * (auth.rememberSecondFactorDays) to skip the second step; with `requireKnownNetwork`, only from a
 * network the device has used. A read only: the device is recorded after the sign-in completes.
 */
export async function secondFactorRemembered(db: Db, userId: string, presented: string | undefined, ip: string, requireKnownNetwork: boolean, at: Date): Promise<boolean> {
  if (!presented || !DEVICE_RE.test(presented)) return false;
  const r = await db.query<{ networks: string[] }>(
    'select networks from devices where user_id = $1 and device_hash = $2 and revoked_at is null and second_factor_until > $3',
    [userId, hashToken(presented), at],
  );
  const row = r.rows[0];
  if (!row) return false;
  return !requireKnownNetwork || row.networks.includes(networkOf(ip));
}

// Looked up for unknown emails too, so both spend the same query (no account enumeration by timing).
const NO_USER = '00000000-0000-0000-0000-000000000000';

/**
 * The id of the user's live device that this device cookie belongs to, or null (no user, no or
 * malformed cookie, unknown or revoked device). The sign-in throttle counts such a device apart,
 * so guesses from elsewhere cannot lock it out.
 */
export async function recognisedDeviceId(db: Db, userId: string | undefined, presented: string | undefined): Promise<string | null> {
  if (!presented || !DEVICE_RE.test(presented)) return null;
  const r = await db.query<{ id: string }>('select id from devices where user_id = $1 and device_hash = $2 and revoked_at is null', [userId ?? NO_USER, hashToken(presented)]);
  return r.rows[0]?.id ?? null;
}

/** Ids of every device of the user (a password reset clears their sign-in throttle buckets). */
export async function deviceIdsOf(db: Db, userId: string): Promise<string[]> {
  return (await db.query<{ id: string }>('select id from devices where user_id = $1', [userId])).rows.map((r) => r.id);
}

/** Remembers a second factor verified at sign-in on this device until `until`. */
export async function rememberSecondFactor(db: Db, userId: string, deviceId: string, until: Date): Promise<void> {
  await db.query('update devices set second_factor_until = $3 where id = $1 and user_id = $2 and revoked_at is null', [deviceId, userId, until]);
}

/** Forgets every remembered device of the user (account recovery: a reset password). */
export async function forgetRememberedDevices(db: Db, userId: string): Promise<void> {
  await db.query('update devices set second_factor_until = null where user_id = $1 and second_factor_until is not null', [userId]);
}

export interface DeviceInfo {
  id: string;
  userAgent: string | null;
  networks: string[];
  firstSeenAt: string;
  lastSeenAt: string;
}

export async function listDevices(db: Db, userId: string): Promise<DeviceInfo[]> {
  const r = await db.query<{ id: string; user_agent: string | null; networks: string[]; first_seen_at: Date | string; last_seen_at: Date | string }>(
    'select id, user_agent, networks, first_seen_at, last_seen_at from devices where user_id = $1 and revoked_at is null order by last_seen_at desc',
    [userId],
  );
  const iso = (v: Date | string): string => (v instanceof Date ? v : new Date(v)).toISOString();
  return r.rows.map((d) => ({ id: d.id, userAgent: d.user_agent, networks: d.networks, firstSeenAt: iso(d.first_seen_at), lastSeenAt: iso(d.last_seen_at) }));
}
