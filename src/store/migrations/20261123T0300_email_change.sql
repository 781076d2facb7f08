-- why: an email change (AUTH-2, AUTH-7) is confirmed by a code mailed to the new address: an
-- email token of its own purpose that carries the address it confirms.
alter table email_tokens add column new_email text;
alter table email_tokens drop constraint email_tokens_purpose_check;
alter table email_tokens add constraint email_tokens_purpose_check check (purpose in ('verify-email', 'password-reset', 'setup', 'email-change'));
alter table email_tokens add constraint email_tokens_new_email_check check ((purpose = 'email-change') = (new_email is not null));
