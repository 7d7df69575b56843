-- Deliveries partitioned by month, and their key in a narrow table of its
-- own (issue 23: retention).
--
-- webhook_deliveries is the widest table (bodies, headers) and the one
-- that grows without end. Partitioned, a month whose bodies retention has
-- dropped goes in one statement instead of row by row. Its uniqueness on
-- (provider, delivery_id) could not span partitions unless it included the
-- partition key, and a sender retries across the end of a month, so the
-- key moves to delivery_keys, unpartitioned and narrow, kept for ever: a
-- retry of a delivery years old is still a duplicate.
--
-- The partition key is the row id itself, which carries its month: the
-- high bits are the month the delivery was received in (UTC), the low 40
-- bits a sequence. So every read and update by row id alone (the worker's,
-- the console's lineage, redrive, replay) is pruned to one partition with
-- no second lookup, and ids still grow with time. Ids stay below 2^53 (a
-- JavaScript number holds them exactly) until the year 2682.
--
-- The existing table becomes one partition, `webhook_deliveries_legacy`,
-- for the ids it already has (all below 2^40). This migration converts it
-- in place, under its lock, copying the keys it finds missing: right for
-- the small tables of a fresh install or a test. README ("Moving a running
-- system onto partitions") says how a large one is prepared ahead (keys
-- copied, the bounds proved) so that this finds that work done and holds
-- the lock for milliseconds.

-- A month's first row id: (months since 1999-12) << 40. Month 0 never
-- occurs, so the range below 2^40 is the legacy rows' alone.
create function delivery_row_base(at timestamptz) returns bigint
    language sql immutable parallel safe
    return (((extract(year from at at time zone 'UTC')::bigint - 2000) * 12
             + extract(month from at at time zone 'UTC')::bigint) << 40);

-- The low bits of every new row id. It cycles after 2^40 (a thousand rows
-- a second for 34 years): an id is its month's base plus these bits, so a
-- wrapped value can only meet a row of the same month, which would take
-- 2^40 deliveries in one month (and the primary key would refuse it, not
-- overwrite). Without cycle, running out would refuse every delivery.
create sequence webhook_delivery_rows as bigint minvalue 1 maxvalue 1099511627775 cycle;
select setval('webhook_delivery_rows',
              coalesce((select max(id) from webhook_deliveries), 0) + 1, false);

-- The key of every delivery ever recorded: what makes a repeated sender id
-- a duplicate, and what is left of a delivery once its month is dropped.
create table if not exists delivery_keys (
    provider text not null,
    -- the sender's message id (svix-id, Stripe's evt_...)
    delivery_id text not null,
    -- webhook_deliveries.id (its month is in its high bits)
    delivery_row bigint not null,
    received_at timestamptz not null,
    -- set by retention (or erasure) when the body is dropped: its SHA-256,
    -- so a copy produced later (the provider's, a dispute's) can be matched
    body_sha256 bytea,
    -- the delivery's outcome when its body was dropped (the wide row, and
    -- with it the outcome, goes when its month is dropped)
    outcome text,
    constraint delivery_keys_pkey primary key (provider, delivery_id)
);

-- From here on nothing is written to the old table. The keys of rows
-- above the highest copied ahead (all of them on a fresh install) are
-- copied now, through the primary key's range.
lock table webhook_deliveries in access exclusive mode;
insert into delivery_keys (provider, delivery_id, delivery_row, received_at)
select provider, delivery_id, id, received_at from webhook_deliveries
where id > coalesce((select max(delivery_row) from delivery_keys), 0)
on conflict on constraint delivery_keys_pkey do nothing;
-- The preparation's trigger (README), if there was one.
drop trigger if exists webhook_deliveries_copy_key on webhook_deliveries;
drop function if exists webhook_deliveries_copy_key();

-- The old table, renamed, becomes the legacy partition. Its names are freed
-- for the partitioned table's; its uniqueness now lives in delivery_keys;
-- its ids come from the shared sequence from now on.
alter table webhook_deliveries rename to webhook_deliveries_legacy;
alter index webhook_deliveries_pkey rename to webhook_deliveries_legacy_pkey;
alter table webhook_deliveries_legacy
    drop constraint webhook_deliveries_provider_delivery_id_key,
    alter column id drop identity,
    -- when retention or erasure dropped the body and headers (null: kept)
    add column scrubbed_at timestamptz;
-- Proven before attaching, so attaching scans nothing (validated ahead
-- on a large table, see README: then only the check that it exists).
do $$
begin
    if not exists (select 1 from pg_constraint
                   where conname = 'webhook_deliveries_legacy_bounds') then
        alter table webhook_deliveries_legacy
            add constraint webhook_deliveries_legacy_bounds check (id < 1099511627776);
    end if;
end $$;

create table webhook_deliveries (
    -- delivery_row_base(received_at) + nextval('webhook_delivery_rows'),
    -- given by the ingester's statement (the default serves a hand-made row)
    id bigint not null default delivery_row_base(now()) + nextval('webhook_delivery_rows'),
    provider text not null,
    delivery_id text not null,
    -- the exact bytes that were signed; empty once scrubbed
    body bytea not null,
    -- every request header as [name, value] pairs; [] once scrubbed
    headers jsonb not null,
    signed_at timestamptz not null,
    received_at timestamptz not null default now(),
    verified_by text not null,
    processed_at timestamptz,
    -- granted | duplicate | conflict | recorded | ignored | parked | ...
    outcome text,
    outcome_detail text,
    -- when retention or erasure dropped the body and headers (null: kept);
    -- the body's hash is kept in delivery_keys
    scrubbed_at timestamptz,
    constraint webhook_deliveries_pkey primary key (id)
) partition by range (id);

alter table webhook_deliveries
    attach partition webhook_deliveries_legacy for values from (minvalue) to (1099511627776);

-- The safety net: a row whose month has no partition yet (the retention
-- job, which creates them months ahead, did not run) lands here instead of
-- failing, so a delivery is never refused for want of a partition. The
-- job moves such rows into their month's partition when it creates it.
create table webhook_deliveries_default partition of webhook_deliveries default
    with (fillfactor = 85);

-- Creates the partition of the month starting `month_start` unless it
-- exists; rows of that month waiting in the default partition are moved
-- into it. Made apart and attached (SHARE UPDATE EXCLUSIVE on the parent,
-- not the ACCESS EXCLUSIVE of CREATE TABLE ... PARTITION OF); the check
-- constraint lets the attach skip its scan. True when it created one.
create function ensure_delivery_month(month_start date) returns boolean
    language plpgsql as $$
declare
    low bigint := delivery_row_base(month_start::timestamp at time zone 'UTC');
    high bigint := delivery_row_base((month_start + interval '1 month')::timestamp at time zone 'UTC');
    part text := 'webhook_deliveries_' || to_char(month_start, '"y"YYYY"m"MM');
begin
    if extract(day from month_start) <> 1 then
        raise exception 'ensure_delivery_month: % is not the first day of a month', month_start;
    end if;
    if to_regclass(part) is not null then
        return false;
    end if;
    execute format('create table %I (like webhook_deliveries including defaults)
                    with (fillfactor = 85)', part);
    execute format('alter table %I add constraint %I check (id >= %s and id < %s)',
                   part, part || '_bounds', low, high);
    execute format('with moved as (delete from webhook_deliveries_default
                                   where id >= %s and id < %s returning *)
                    insert into %I select * from moved', low, high, part);
    execute format('alter table webhook_deliveries attach partition %I
                    for values from (%s) to (%s)', part, low, high);
    return true;
end $$;

-- This month and the next two exist from the start.
select ensure_delivery_month((date_trunc('month', now() at time zone 'UTC') + n * interval '1 month')::date)
from generate_series(0, 2) as n;

-- Sent notifications lose their recipient and personal facts to retention
-- (or erasure); this says when.
alter table notifications
    add column scrubbed_at timestamptz,
    drop constraint notifications_recipient_check,
    -- an email keeps its address until it is scrubbed; other channels never have one
    add constraint notifications_recipient_check
        check (case when channel = 'email' then recipient is not null or scrubbed_at is not null
                    else recipient is null end);

-- Retention's scan: sent notifications not scrubbed yet, oldest first. The
-- grant's insert writes none (sent_at is null then); the notifier's update
-- of sent_at was not heap-only already (notifications_due_idx's predicate
-- names sent_at), so this costs it one index entry, off the payment path.
create index notifications_unscrubbed_sent_idx on notifications (sent_at)
    where scrubbed_at is null and sent_at is not null;
