-- The hot paths back to their cost before the monthly partitions (issue
-- 23). The key table added a heap row and a join to every delivery the
-- ingester records, and every partition a check on every row written to
-- it; these changes take that off again. All are catalogue changes on a
-- table of any size (no table is rewritten).
--
-- 1. The sender's key compared byte by byte. Every delivery descends
--    delivery_keys' primary key twice (ON CONFLICT's check, then the
--    insert), comparing text at each level; under the database's default
--    collation each comparison goes through strcoll (C.UTF-8 here, en_US
--    and others elsewhere are slower still). The ids are opaque tokens
--    (msg_..., evt_...): equality is all they need, and byte order serves
--    the index as well as any. The table is not rewritten; its primary
--    key is rebuilt, under this migration's lock, unless it was made with
--    "C" already (README, "Moving a running system onto partitions",
--    creates it so ahead: then the index is kept as it is).
alter table delivery_keys
    alter column provider type text collate "C",
    alter column delivery_id type text collate "C";

-- 2. The request headers stored as json, not jsonb. They are written once
--    and only ever read whole (the console shows them); jsonb parsed every
--    header into a tree on the hot path (about a tenth of the statement),
--    json only checks the text is JSON and keeps it as sent.
--    Changing the column's type would rewrite every partition, the legacy
--    one included (minutes under an exclusive lock on a large table), so
--    the jsonb column keeps the rows recorded until now under another name
--    and a new json column takes its place: new rows fill `headers`, rows
--    from before have theirs in `headers_jsonb`. Readers take whichever is
--    set; scrubbing empties both. Once retention has dropped every month
--    recorded before this migration (and the legacy partition), a later
--    migration drops `headers_jsonb`.
alter table webhook_deliveries rename column headers to headers_jsonb;
alter table webhook_deliveries alter column headers_jsonb drop not null;
-- every request header as [name, value] pairs, as the ingester wrote them;
-- [] once scrubbed; null only on rows recorded before this migration
alter table webhook_deliveries add column headers json;

-- 3. The partitions' bounds checks dropped. Each was added so that
--    attaching its partition could skip scanning it; once attached, the
--    partition's own bounds say the same, and the check was evaluated
--    again on every row inserted or updated (the worker's updates of
--    processed_at, every statement preparing the expression anew).
--    PostgreSQL's documentation advises dropping it after the attach.
do $$
declare
    bounds record;
begin
    for bounds in
        select c.conrelid::regclass as partition, c.conname
        from pg_constraint c join pg_inherits i on i.inhrelid = c.conrelid
        where i.inhparent = 'webhook_deliveries'::regclass and c.contype = 'c'
          and c.conname = c.conrelid::regclass::text || '_bounds'
    loop
        execute format('alter table %s drop constraint %I', bounds.partition, bounds.conname);
    end loop;
end $$;

-- Months made from now on drop theirs once attached.
create or replace function ensure_delivery_month(month_start date) returns boolean
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
    -- Attached, the partition's bounds hold by themselves; the check
    -- that spared the attach its scan would only cost every write.
    execute format('alter table %I drop constraint %I', part, part || '_bounds');
    return true;
end $$;
