-- why: remembered devices (AUTH-6, AUTH-7) need until when a device on which the user verified
-- a second factor at sign-in skips the second step (auth.rememberSecondFactorDays).
alter table devices add column second_factor_until timestamptz;
