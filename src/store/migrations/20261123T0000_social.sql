-- why: social sign-in (AUTH-8, issue 8 item 5). A user's link to a provider account is keyed by
-- the provider's stable subject, never by email (an address can change hands at the provider).
-- An account that exists with the provider's verified email is linked only after its owner
-- confirms with their password: the pending link is a single-use, short-lived token stored as a
-- SHA-256 hash. Platform tables like users: no tenant id.
create table social_identities (
  id uuid primary key,
  user_id uuid not null references users (id),
  provider text not null,
  subject text not null,
  email text not null,
  created_at timestamptz not null default now(),
  unique (provider, subject)
);
create index social_identities_user_idx on social_identities (user_id);

create table social_link_tokens (
  id uuid primary key,
  user_id uuid not null references users (id),
  provider text not null,
  subject text not null,
  email text not null,
  token_hash text not null unique,
  mode text not null check (mode in ('bearer', 'cookie')),
  expires_at timestamptz not null,
  used_at timestamptz,
  created_at timestamptz not null default now()
);
create index social_link_tokens_user_idx on social_link_tokens (user_id);

revoke all on social_identities, social_link_tokens from gatehouse_app;
grant select, insert, update on social_identities, social_link_tokens to gatehouse_app;
-- A link goes with the account (deletion) or with its owner's wish.
grant delete on social_identities to gatehouse_app;
