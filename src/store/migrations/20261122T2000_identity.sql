-- why: accounts and sessions (AUTH-1..6, AUTH-10). Users are platform-level identities, not
-- tenant data (a user may belong to several organizations), so these tables carry no tenant
-- id. Secrets are never stored: passwords as Argon2id hashes, every token as a SHA-256 hash.
create table users (
  id uuid primary key,
  -- Lowercased, NFKC-normalised address; unique among accounts that are not deleted.
  email text not null,
  email_verified_at timestamptz,
  password_hash text,
  status text not null default 'active' check (status in ('active', 'disabled', 'deleted')),
  is_operator boolean not null default false,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz
);
create unique index users_email_live_idx on users (email) where status <> 'deleted';

-- A session is one sign-in; its refresh tokens form a family rotated on every use.
create table sessions (
  id uuid primary key,
  user_id uuid not null references users (id),
  device_id uuid,
  mode text not null check (mode in ('bearer', 'cookie')),
  -- Keys the derivation of refresh-token successors: a stolen token alone cannot derive one.
  successor_key text not null,
  ip text,
  user_agent text,
  created_at timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  idle_expires_at timestamptz not null,
  absolute_expires_at timestamptz not null,
  -- Set when the password was last re-entered in this session (sensitive actions).
  reauth_at timestamptz,
  revoked_at timestamptz,
  revoked_reason text
);
create index sessions_user_idx on sessions (user_id);

create table refresh_tokens (
  id uuid primary key,
  session_id uuid not null references sessions (id),
  token_hash text not null unique,
  parent_id uuid,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index refresh_tokens_session_idx on refresh_tokens (session_id);

-- Single-use, short-lived tokens sent by mail (and the first-run setup link).
create table email_tokens (
  id uuid primary key,
  user_id uuid references users (id),
  purpose text not null check (purpose in ('verify-email', 'password-reset', 'setup')),
  token_hash text not null unique,
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index email_tokens_user_idx on email_tokens (user_id);

create table devices (
  id uuid primary key,
  user_id uuid not null references users (id),
  -- SHA-256 of the device cookie value.
  device_hash text not null,
  user_agent text,
  -- Networks seen (IPv4 /24, IPv6 /48).
  networks text[] not null default '{}',
  first_seen_at timestamptz not null default now(),
  last_seen_at timestamptz not null default now(),
  revoked_at timestamptz,
  unique (user_id, device_hash)
);

revoke all on users, sessions, refresh_tokens, email_tokens, devices from gatehouse_app;
grant select, insert, update on users, sessions, refresh_tokens, email_tokens, devices to gatehouse_app;
