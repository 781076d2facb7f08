-- why: second factors (AUTH-7, issue 8): TOTP factors, recovery codes, the pending second step of
-- a sign-in, and when each session last verified a second factor (step-up for sensitive actions).
-- Like users and sessions these are platform tables (a user's factors do not belong to an org),
-- so they carry no tenant id. Nothing secret is stored readable: the TOTP secret is sealed under
-- the user's personal-data key (account deletion shreds it), recovery codes and sign-in
-- challenge tokens are stored as SHA-256 hashes.
create table mfa_factors (
  id uuid primary key,
  user_id uuid not null references users (id),
  kind text not null check (kind in ('totp')),
  -- Sealed by the keyring under (platform, user), bound to this table, column and row.
  secret_sealed text not null,
  -- Null until the first code confirmed the factor: an unconfirmed factor is never asked for.
  confirmed_at timestamptz,
  -- The last accepted time step: a code for this step or an earlier one is refused (replay).
  last_step bigint,
  created_at timestamptz not null default now(),
  deleted_at timestamptz
);
create index mfa_factors_user_idx on mfa_factors (user_id);
-- One live factor of a kind per user (pending or confirmed), so two racing enrolments or
-- confirmations cannot leave a user with two TOTP secrets.
create unique index mfa_factors_one_live_idx on mfa_factors (user_id, kind) where deleted_at is null;

-- Ten single-use codes per set; a new set voids the old one.
create table recovery_codes (
  id uuid primary key,
  user_id uuid not null references users (id),
  code_hash text not null,
  used_at timestamptz,
  voided_at timestamptz,
  created_at timestamptz not null default now()
);
create index recovery_codes_user_idx on recovery_codes (user_id, code_hash);

-- The second step of one sign-in: a short-lived, single-use token bound to the user and to the
-- mode the password step asked for, with the number of codes tried against it.
create table mfa_challenges (
  id uuid primary key,
  user_id uuid not null references users (id),
  token_hash text not null unique,
  mode text not null check (mode in ('bearer', 'cookie')),
  attempts integer not null default 0,
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index mfa_challenges_user_idx on mfa_challenges (user_id);

-- When this session last verified a second factor (at sign-in or by step-up).
alter table sessions add column mfa_at timestamptz;

revoke all on mfa_factors, recovery_codes, mfa_challenges from gatehouse_app;
grant select, insert, update on mfa_factors, recovery_codes, mfa_challenges to gatehouse_app;
