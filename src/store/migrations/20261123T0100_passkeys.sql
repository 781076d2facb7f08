-- why: WebAuthn passkeys (AUTH-7, issue 8 item 3): several named passkeys per user, used as a
-- second factor and as a passwordless first factor (discoverable credentials). Like mfa_factors
-- this is a platform table (a user's passkeys do not belong to an org), so it carries no tenant
-- id. Nothing secret is stored: a passkey's private key never leaves the authenticator; the row
-- holds its public key, the sign counter that reveals a cloned authenticator, and the random
-- user handle the authenticator keeps instead of the email address. Removal (by the owner or
-- with the account) deletes the row.
create table passkeys (
  id uuid primary key,
  user_id uuid not null references users (id),
  -- The credential id the authenticator chose (base64url); one credential belongs to one user.
  credential_id text not null unique,
  -- COSE public key (base64url).
  public_key text not null,
  -- The highest signature counter accepted so far (0 for authenticators that do not count).
  sign_counter bigint not null default 0 check (sign_counter >= 0),
  transports text[] not null default '{}',
  -- 'singleDevice' or 'multiDevice' (synced), and whether it is backed up now.
  device_type text not null check (device_type in ('singleDevice', 'multiDevice')),
  backed_up boolean not null default false,
  -- Random bytes (base64url) given to the authenticator as the user id; the same for all of a user's passkeys.
  user_handle text not null,
  aaguid text,
  name text not null,
  created_at timestamptz not null default now(),
  last_used_at timestamptz
);
create index passkeys_user_idx on passkeys (user_id);
create index passkeys_user_handle_idx on passkeys (user_handle);

revoke all on passkeys from gatehouse_app;
grant select, insert, update, delete on passkeys to gatehouse_app;
