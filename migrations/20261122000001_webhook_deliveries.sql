-- Every verified webhook delivery, exactly as it arrived. A row exists before
-- the sender gets its 200, so a delivery we acknowledged is never lost; the
-- outbox columns say whether it has reached the queue, the processing columns
-- what the worker made of it.
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

    -- outbox: null until the broker confirmed the publish
    published_at timestamptz,
    -- when a relay last tried to publish it, so two relays don't both send it at once
    publish_attempted_at timestamptz,

    -- set in the same transaction as the work it describes
    processed_at timestamptz,
    -- granted | duplicate | conflict | recorded | ignored | parked
    outcome text,
    outcome_detail text,

    constraint webhook_deliveries_provider_delivery_id_key unique (provider, delivery_id)
);

-- The relay looks only at what is still unpublished, so this stays tiny.
create index webhook_deliveries_unpublished_idx
    on webhook_deliveries (received_at) where published_at is null;
