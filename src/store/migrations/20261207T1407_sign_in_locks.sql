-- why: the sign-in lockout (AUTH-5) lived only in kv, so a restart of the embedded node (memory
-- kv) or of a Redis without persistence lifted every lock, the 100-failure hard lock included.
-- A bucket of the sign-in throttle that reaches auth.lockoutThreshold failures is recorded here
-- (and its count kept from then on); the throttle reads it before every password check and never
-- lets kv answer with less. A password reset deletes the account's rows, a correct password the
-- row of the bucket it was counted in.
-- bucket: 'a:<sha-256 of the email, base64url, 32 chars>' (sign-ins from devices the account has
-- not used; unknown emails get rows exactly like known ones, so nothing here tells them apart)
-- or 'd:<devices.id>' (one recognised device). No email, no user id: platform data, not tenant
-- data, so no tenant_id and no RLS, like users and devices.
create table sign_in_locks (
  bucket text primary key check (bucket ~ '^(a:[A-Za-z0-9_-]{32}|d:[0-9a-f-]{36})$'),
  -- Consecutive failures counted in the bucket (at least the lockout threshold when written).
  failures integer not null check (failures > 0),
  last_failure_at timestamptz not null,
  -- When the bucket reached the lockout threshold: one attempt per auth.lockoutSeconds from then.
  locked_at timestamptz not null,
  -- When it reached 100 consecutive failures (NIST SP 800-63B-4): refused until a password reset.
  hard_locked_at timestamptz
);

revoke all on sign_in_locks from gatehouse_app;
grant select, insert, update, delete on sign_in_locks to gatehouse_app;
