-- API keys for the product's own backend (server to server): it may spend
-- credits for a user it names. Only the key's SHA-256 is kept; the key is
-- shown once, when it is made (`ledgerhook-admin api-key add`). A revoked
-- key stays listed, for the audit trail, and its name is not reused.
create table api_keys (
    name text primary key
        constraint api_keys_name_check check (name ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
    -- sha256 of the whole key: the key is 256 random bits, so a fast hash
    -- is enough (nothing to guess), and a lookup is one index probe
    key_hash bytea not null unique
        constraint api_keys_key_hash_check check (octet_length(key_hash) = 32),
    created_at timestamptz not null default now(),
    created_by text,
    revoked_at timestamptz,
    revoked_by text
);

-- Which API key spent, when a backend spent for the user (null: the user's
-- own token did).
alter table credit_spends add column api_key text;
