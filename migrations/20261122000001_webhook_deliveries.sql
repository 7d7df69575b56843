-- Every verified webhook delivery, exactly as it arrived. A row exists before
-- the sender gets its 200, so a delivery we acknowledged is never lost; the
-- processing columns say what the worker made of it.
create table webhook_deliveries (
    id bigint generated always as identity primary key,
    -- who sent it: room for providers other than Crossmint/Svix
    provider text not null,
    -- the sender's message id (svix-id / webhook-id); the same across its retries
    delivery_id text not null,
    -- the exact bytes that were signed
    body bytea not null,
    -- every request header as [name, value] pairs (values lossily decoded)
    headers jsonb not null,
    -- the signed timestamp the sender put in the signature headers
    signed_at timestamptz not null,
    received_at timestamptz not null default now(),
    -- fingerprint of the live secret that verified the signature (never the secret)
    verified_by text not null,

    -- set in the same transaction as the work it describes
    processed_at timestamptz,
    -- granted | duplicate | conflict | recorded | ignored | parked
    outcome text,
    outcome_detail text,

    constraint webhook_deliveries_provider_delivery_id_key unique (provider, delivery_id)
)
-- Room on each page for the worker's one update (processed_at, outcome) to
-- stay a cheap heap-only update.
with (fillfactor = 85);

-- The outbox: deliveries recorded but not yet confirmed by the broker. A row
-- is inserted with its delivery in one statement and deleted when the broker
-- confirms the publish, so this table stays as small as the backlog and the
-- wide delivery rows are never rewritten for it.
create table delivery_outbox (
    -- no foreign key: rows are only ever created in the statement that
    -- inserts their delivery, and the check would cost a lookup per delivery
    delivery_row bigint primary key,
    created_at timestamptz not null default now(),
    -- when a relay last tried to publish it, so two relays don't both send it at once
    attempted_at timestamptz
);
