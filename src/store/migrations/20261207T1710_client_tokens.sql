-- why: short-lived client tokens for the AI gateway (GW-6, src/tokens/).
-- why: client tokens are signed with keys of their own purpose, so a key that signs user access
-- tokens never signs a gateway credential (and the reverse): a token's kid alone tells which
-- verifier may accept it, besides its typ and aud. The keys are created at the next start, like
-- the others (src/keyring/signing-keys.ts ensure()).
alter table signing_keys drop constraint signing_keys_purpose_check;
alter table signing_keys add constraint signing_keys_purpose_check check (purpose in ('access-token', 'audit-checkpoint', 'client-token'));

-- why: usage of calls made with a client token carries the token's subject (an end user or a bot
-- id of the tenant's own app), so a tenant sees which of its users or bots spent what. Null for
-- calls made with an API key directly, and for tokens minted without a subject.
alter table usage_records add column subject text check (subject is null or length(subject) between 1 and 128);
